#!/usr/bin/env bash
# Benchmarks of the ingest path, the HTTP gateway and the evaluator, on this
# machine, with their baselines measured in the same run. Prints JSON (the
# gateway a markdown table); docs/benchmarks.md keeps the latest figures and
# this command.
#   EVENTS (events per ingest drain, default 500000), STORED (measurements stored before each
#   drain, "0,10000000,100000000"), LATENCY_DURATION (30s), SIZES (municipalities, "237,474,947"),
#   OLDER (older measurements added to the largest size, in steps, "10000000,100000000"),
#   GATEWAY_EVENTS (200000)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data/bench
echo "== ingest: drain of a pre-filled stream with 0, 10 M and 100 M measurements stored, JetStream consume-only, ClickHouse insert-only, resumption after SIGKILL" >&2
(cd services/ingest && go run ./cmd/ingestbench --bin ../../bin --events "${EVENTS:-500000}" \
	--sizes "${STORED:-0,10000000,100000000}" --latency-duration "${LATENCY_DURATION:-30s}" \
	--chart ../../docs/ingest-drain.png) | tee .data/bench/ingest.json
echo "== ingest: ClickHouse steps of one flush (5000 events, 1 M stored)" >&2
(cd services/ingest && go test -run '^$' -bench FlushSteps -benchtime 20x ./internal/store/) | tee .data/bench/flush.txt
echo "== gateway: events/s in batches of 500 and single-event latency at 500/s, vs direct NATS publishing" >&2
(cd services/gateway && go run ./cmd/gatewaybench --events "${GATEWAY_EVENTS:-200000}" \
	--latency-duration "${LATENCY_DURATION:-30s}") | tee .data/bench/gateway.md
echo "== evaluator: full evaluations by size and by older history stored; what its rollups add to inserts" >&2
(cd services/evaluator && go run ./cmd/evalbench --municipalities "${SIZES:-237,474,947}" --older "${OLDER:-10000000,100000000}" \
	--runs 3 --keep --chart ../../docs/evaluator-bench.png) | tee .data/bench/evaluator.json
