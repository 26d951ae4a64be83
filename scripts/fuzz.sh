#!/usr/bin/env bash
# fuzz.sh BUILD SECONDS — run every libFuzzer target of BUILD (a build folder
# configured with RS_FUZZ=ON and CC=clang: `make fuzz`) for SECONDS each, on
# its committed seed corpus tests/fuzz/corpus/<target>/ (read only: what a run
# finds goes to BUILD/fuzz-corpus/<target>/, crashes to BUILD/fuzz-artifacts/).
# Exit status 1 at the first target that crashes, leaks, trips a sanitizer or
# breaks one of its properties; its log's tail is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:?usage: fuzz.sh BUILD SECONDS}
SECONDS_EACH=${2:?usage: fuzz.sh BUILD SECONDS}

for seeds in tests/fuzz/corpus/*/; do
    t=$(basename "$seeds")
    bin="$BUILD/$t"
    [[ -x "$bin" ]] || { echo "fuzz: $bin is missing (build it with RS_FUZZ=ON)" >&2; exit 1; }
    mkdir -p "$BUILD/fuzz-corpus/$t" "$BUILD/fuzz-artifacts"
    log="$BUILD/fuzz-$t.log"
    echo "fuzz: $t for ${SECONDS_EACH}s ($(ls "$seeds" | wc -l) seeds)" >&2
    if ! "$bin" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$BUILD/fuzz-artifacts/$t-" -print_final_stats=1 \
        "$BUILD/fuzz-corpus/$t" "$seeds" >"$log" 2>&1; then
        tail -60 "$log" >&2
        echo "fuzz: $t FAILED (log $log; inputs in $BUILD/fuzz-artifacts/)" >&2
        exit 1
    fi
    # libFuzzer's summary: executions, speed, corpus size.
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done)' "$log" |
        sed "s/^/   /" >&2 || true
    grep -E '^#[0-9]+.*DONE' "$log" | tail -1 | sed "s/^/   /" >&2 || true
done
