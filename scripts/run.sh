#!/usr/bin/env bash
# Runs the platform locally with demo data: ClickHouse (installed from the OS
# packages when missing), NATS with JetStream (embedded, data in .data/nats),
# the ingest service, the evaluator and the simulator. Ctrl-C stops it all.
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
if [ -x bin/simulator ]; then
	start simulator bin/simulator
fi

cat <<MSG

Assoliment is running:
  NATS (JetStream)   nats://127.0.0.1:4222          data in .data/nats
  ClickHouse         127.0.0.1:9000 (native)        database smartcity
  ingest             http://127.0.0.1:8081/metrics  /healthz /readyz
  evaluator          http://127.0.0.1:8080/api/v1/municipalities  /metrics
  logs               .data/logs/

Try: curl -s http://127.0.0.1:8080/api/v1/municipalities
     bin/kpictl assessment sabadell
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a process exited; see .data/logs/" >&2
