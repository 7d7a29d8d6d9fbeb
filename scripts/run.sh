#!/usr/bin/env bash
# Runs the platform locally with demo data: ClickHouse (installed from the OS
# packages when missing), NATS with JetStream (embedded, data in .data/nats),
# the ingest service, the evaluator, the HTTP gateway (with a demo token) and
# the simulator. Ctrl-C stops it all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .data/logs

scripts/clickhouse.sh start

pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	scripts/clickhouse.sh stop
	echo "stopped"
	exit 0
}
trap stop INT TERM EXIT

start() { # name, command...
	local name=$1
	shift
	"$@" >".data/logs/$name.log" 2>&1 &
	pids+=($!)
}

wait_port() { # port on 127.0.0.1
	for _ in $(seq 1 120); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.5
	done
	echo "nothing listens on 127.0.0.1:$1; see .data/logs/" >&2
	return 1
}

start natsd bin/natsd --addr 127.0.0.1:4222 --store .data/nats
wait_port 4222
start ingest bin/ingest
wait_port 8081
if [ -x bin/evaluator ]; then
	start evaluator bin/evaluator --criteria-file deploy/evaluator/criteria.yaml
	wait_port 8080
fi
if [ -x bin/gateway ]; then
	# A fresh demo token at every start, for the simulator's waste
	# contractor in Sabadell; the tokens file holds only its hash.
	mkdir -p .data/gateway
	token="asl_demo_$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
	(umask 077 && printf '%s\n' "$token" >.data/gateway/demo.token)
	cat >.data/gateway/tokens.yaml <<YAML
tokens:
  - publisher: fcc-medi-ambient
    municipalities: [sabadell]
    sha256: $(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
YAML
	cat >.data/gateway/demo-event.json <<JSON
{"specversion":"1.0","id":"demo-$(date -u +%Y%m%dT%H%M%S)","source":"urn:provider:fcc-medi-ambient","type":"cat.smartcity.kpi.measured.v1","time":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","municipality":"sabadell","publisher":"fcc-medi-ambient","data":{"service":"waste-collection","kpi":"containers-emptied-on-time","value":0.99}}
JSON
	start gateway bin/gateway --tokens-file .data/gateway/tokens.yaml
	wait_port 8082
fi
if [ -x bin/simulator ]; then
	start simulator bin/simulator
fi

cat <<MSG

Assoliment is running:
  NATS (JetStream)   nats://127.0.0.1:4222          data in .data/nats
  ClickHouse         127.0.0.1:9000 (native)        database smartcity
  ingest             http://127.0.0.1:8081/metrics  /healthz /readyz
  evaluator          http://127.0.0.1:8080/api/v1/municipalities  /metrics
  gateway            http://127.0.0.1:8082/api/v1/events  demo token in .data/gateway/demo.token
  logs               .data/logs/

Try: curl -s http://127.0.0.1:8080/api/v1/municipalities
     bin/kpictl assessment sabadell
     curl -sS -H "Authorization: Bearer \$(cat .data/gateway/demo.token)" -H "Content-Type: application/cloudevents+json" --data-binary @.data/gateway/demo-event.json http://127.0.0.1:8082/api/v1/events
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a process exited; see .data/logs/" >&2
