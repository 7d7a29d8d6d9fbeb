// Package deploytest checks the deployment files of the repository without a
// container engine: the docker-compose.yml model, the Prometheus
// configuration, rules and rule tests (through promtool), and the Grafana
// provisioning and dashboards.
//
// Run it from this directory with:
//
//	GOWORK=off go test ./...
package deploytest
