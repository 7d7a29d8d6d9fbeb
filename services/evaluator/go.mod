module github.com/assoliment/assoliment/services/evaluator

go 1.26

require (
	github.com/assoliment/assoliment/services/contract v0.0.0
	go.yaml.in/yaml/v3 v3.0.6
)

replace github.com/assoliment/assoliment/services/contract => ../contract
