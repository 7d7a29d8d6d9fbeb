#!/usr/bin/env bash
# Benchmarks of the ingest path and of the evaluator, on this machine, with
# their baselines measured in the same run. Prints JSON; docs/benchmarks.md
# keeps the latest figures and this command.
#   EVENTS (default 500000), LATENCY_DURATION (30s), SIZES (municipalities, "237,947")
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data/bench
echo "== ingest: end to end vs JetStream consume-only and ClickHouse insert-only" >&2
(cd services/ingest && go run ./cmd/ingestbench --bin ../../bin --events "${EVENTS:-500000}" \
	--latency-duration "${LATENCY_DURATION:-30s}") | tee .data/bench/ingest.json
echo "== ingest: ClickHouse steps of one flush (5000 events)" >&2
(cd services/ingest && go test -run '^$' -bench FlushSteps -benchtime 20x ./internal/store/) | tee .data/bench/flush.txt
echo "== evaluator: one full evaluation, generated data sets" >&2
(cd services/evaluator && go run ./cmd/evalbench --municipalities "${SIZES:-237,947}" --runs 3 --keep) | tee .data/bench/evaluator.json
