module github.com/assoliment/assoliment/services/gateway

go 1.26.0

require github.com/assoliment/assoliment/services/contract v0.0.0

require (
	github.com/go-json-experiment/json v1.27.2 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/assoliment/assoliment/services/contract => ../contract

replace github.com/assoliment/assoliment/services/platform => ../platform
