# Assoliment: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BINARIES := ingest evaluator gateway simulator kpictl
MODULES := $(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null)

.PHONY: all build run test test-go vet lint bench fuzz smoke soak test-faults test-ha deps clickhouse clickhouse-stop clean

all: build

## build: the binaries into bin/
build:
	@mkdir -p bin
	cd services/platform && $(GO) build -o ../../bin/natsd ./cmd/natsd
	@for b in $(BINARIES); do \
		if [ -d services/$$b/cmd/$$b ]; then (cd services/$$b && $(GO) build -o ../../bin/$$b ./cmd/$$b) || exit 1; fi; \
	done

## run: the platform with demo data (ClickHouse, embedded NATS, ingest, evaluator, gateway, simulator)
run: build
	scripts/run.sh

## deps: what the tests need (ClickHouse server, chDB from npm, ZooKeeper, promtool, Alertmanager and amtool, mosquitto_pub, chromium)
deps:
	scripts/clickhouse.sh start
	@test -f /usr/share/java/zookeeper.jar || { echo "installing ZooKeeper (Debian package zookeeper), for the ClickHouse replica tests"; \
		[ "$$(id -u)" -eq 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends zookeeper >/dev/null; }
	scripts/chdb.sh >/dev/null
	@command -v promtool >/dev/null || { echo "installing promtool (Debian package prometheus)"; \
		[ "$$(id -u)" -eq 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v amtool >/dev/null || { echo "installing Alertmanager and amtool (Debian package prometheus-alertmanager)"; \
		[ "$$(id -u)" -eq 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null; }
	@command -v mosquitto_pub >/dev/null || { echo "installing mosquitto_pub (Debian package mosquitto-clients)"; \
		[ "$$(id -u)" -eq 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends mosquitto-clients >/dev/null; }
	@command -v chromium >/dev/null || { echo "installing chromium (Debian package chromium), for the report's browser test"; \
		[ "$$(id -u)" -eq 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

## test: lint, then every test of every module with the race detector, against real ClickHouse and NATS
test: deps lint test-go

## lint: gofmt, go vet and staticcheck (configuration and reasons in staticcheck.conf)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CURDIR)/.data/bin/staticcheck
lint: $(STATICCHECK)
	@test -z "$$(gofmt -l services deploy 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l services deploy; exit 1; }
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./... && $(STATICCHECK) ./...) || exit 1; done
	cd deploy/deploytest && GOWORK=off $(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(CURDIR)/.data/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet: lint

test-go:
	@status=0; for m in $(MODULES); do \
		echo "== $${m#$(CURDIR)/}"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 20m ./...) || status=1; \
	done; \
	echo "== deploy/deploytest"; \
	(cd deploy/deploytest && GOWORK=off $(GO) test -race -count=1 -timeout 10m ./...) || status=1; \
	exit $$status

## bench: benchmarks; figures go to docs/benchmarks.md
bench: deps build
	scripts/bench.sh

## smoke: the local platform with the simulator, a real Prometheus with the shipped
## rules, and every dashboard and rule expression run through it (also part of make test)
smoke: deps
	cd deploy/deploytest && GOWORK=off $(GO) test -count=1 -run TestSmoke -v .

## test-faults: ClickHouse outage and table error, NATS restart, ingest killed
## five times, evaluator restart (also part of make test)
test-faults: deps
	$(GO) test -race -count=1 -run '^TestFault' ./services/ingest/service/ ./services/evaluator/service/

## test-ha: failover with a three-node NATS cluster (leader stopped, node killed
## and restarted; the shipped cluster configurations) and with two ClickHouse
## replicas and ZooKeeper (replica stopped, then the other killed, while two
## ingest replicas store; both replicas equal, evaluator on either; about
## 90 s of the run on 2 cores) (also part of make test)
test-ha: deps
	$(GO) test -race -count=1 -run '^TestFaultNATSCluster' ./services/ingest/service/
	$(GO) test -race -count=1 -run '^TestSecureCluster' ./services/platform/natsauth/
	$(GO) test -race -count=1 -run '^TestFailover$$' ./services/platform/chconn/
	$(GO) test -race -count=1 -run '^TestCluster|^TestReplicated' ./services/storage/
	$(GO) test -race -count=1 -run '^TestFaultClickHouseReplicaLost$$' ./services/evaluator/service/

## soak: SOAK_DURATION (default 10m) at 5,000 events/s with 1 % invalid; RSS and counts
SOAK_DURATION ?= 10m
soak: deps build
	$(GO) run ./services/ingest/cmd/soak --bin bin --duration $(SOAK_DURATION)

## fuzz: the contract's fuzz target (FUZZTIME, default 2m)
FUZZTIME ?= 2m
fuzz:
	cd services/contract && $(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) .

clickhouse:
	scripts/clickhouse.sh start

clickhouse-stop:
	scripts/clickhouse.sh stop

clean:
	rm -rf bin
