#!/usr/bin/env bash
# Runs the system benchmarks described in docs/BENCHMARKS.md:
#   latency  throughput vs max_in_flight with a simulated round trip per call
#            (in memory; about 4 minutes; writes the plot docs/bench/latency.svg)
#   drain    `iniesta consume` (default settings) vs four and one bare
#            receive/delete loops on moto, three rounds (about a minute with
#            the patched moto of tests/benches/moto_fast.py; needs python3
#            with moto 5.2 and redis-server on PATH)
#
# Usage: scripts/bench.sh [latency] [drain]     (default: both)
# The benches' environment variables (LATENCY_MS, LATENCY_CONSUMERS, DRAIN_N,
# DRAIN_CONSUMERS, DRAIN_FAST_MOTO, ...) pass through; see docs/BENCHMARKS.md.
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
            echo "== drain (about a minute with the patched moto; 20 or more with DRAIN_FAST_MOTO=0)" >&2
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
