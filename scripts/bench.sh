#!/usr/bin/env bash
# Runs the system benchmarks described in docs/BENCHMARKS.md:
#   latency  throughput vs max_in_flight with a simulated round trip per call
#            (in memory; writes the plot docs/bench/latency.svg)
#   drain    `iniesta consume` vs a bare receive/delete loop on moto_server
#            (needs moto_server and redis-server on PATH)
#
# Usage: scripts/bench.sh [latency] [drain]     (default: both)
# The benches' environment variables (LATENCY_MS, HANDLER_MS, DRAIN_N, ...)
# pass through; see docs/BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
results="$target/bench-results"
mkdir -p "$results"

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    benches=(latency drain)
fi

for bench in "${benches[@]}"; do
    case "$bench" in
        latency)
            echo "== latency (about 4 minutes)" >&2
            cargo bench -p iniesta-tests --bench latency | tee "$results/latency.md"
            ;;
        drain)
            echo "== drain: building the release iniesta binary" >&2
            cargo build --release -p iniesta-tokio --features cli --bin iniesta
            export INIESTA_BIN="${INIESTA_BIN:-$PWD/$target/release/iniesta}"
            echo "== drain (a few minutes; moto_server is the bottleneck)" >&2
            cargo bench -p iniesta-tests --bench drain | tee "$results/drain.md"
            ;;
        *)
            echo "unknown bench '$bench' (expected: latency, drain)" >&2
            exit 2
            ;;
    esac
done

echo >&2
echo "Results (markdown tables): $results/" >&2
for bench in "${benches[@]}"; do
    echo "  $results/$bench.md" >&2
done
case " ${benches[*]} " in
    *" latency "*) echo "Plot: docs/bench/latency.svg" >&2 ;;
esac
