#!/usr/bin/env bash
# chaos.sh [BUILD] — the long version of the chaos test (docs/reliability.md):
# tests/integration/test_chaos.c, run RUNS times with more kills and a bigger
# book than the bounded run in the suite. Each run has its own seed (SEED,
# then SEED+1, ...; default from the clock) and prints its figures: kills by
# point, state directories deleted, restores, leader moves, injected errors,
# journal records, duplicates.
#
#   KILLS=300 CONTRACTS=400 WORKERS=3 RUNS=3 scripts/chaos.sh      # the defaults
#   SEED=579113 KILLS=20 CONTRACTS=60 RUNS=1 scripts/chaos.sh      # repeat one schedule
#
# A failing run prints its seed and the command that repeats its schedule
# (timing still varies from run to run), keeps its temp dirs (worker logs
# and state, named in its log: a failed assertion skips the test's
# clean-up) and stops the script with exit status 1. BUILD defaults to build (configure and build it first).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
KILLS=${KILLS:-300}
CONTRACTS=${CONTRACTS:-400}
WORKERS=${WORKERS:-3}
RUNS=${RUNS:-3}
SEED=${SEED:-$(($(date +%s) % 1000000 + 1))}
BIN="$BUILD/test_chaos"
[[ -x "$BIN" && -x "$BUILD/revstream" ]] || {
    echo "chaos: $BIN or $BUILD/revstream missing (cmake --build $BUILD)" >&2
    exit 1
}

for ((r = 0; r < RUNS; r++)); do
    seed=$((SEED + r))
    log=$(mktemp /tmp/revstream-chaos.XXXXXX.log)
    echo "chaos: run $((r + 1))/$RUNS seed=$seed kills=$KILLS contracts=$CONTRACTS workers=$WORKERS" >&2
    t0=$SECONDS
    if RS_CHAOS_SEED=$seed RS_CHAOS_KILLS=$KILLS RS_CHAOS_CONTRACTS=$CONTRACTS \
        RS_CHAOS_WORKERS=$WORKERS "$BIN" --jobs 1 --filter 'chaos/*' >"$log" 2>&1; then
        grep -E '^chaos: seed=.* kills=.*\(' "$log" | sed 's/^/   /' >&2
        echo "   passed in $((SECONDS - t0))s; $(grep -c '^chaos: duplicate' "$log") entry ids" \
            "delivered more than once" >&2
        rm -f "$log"
    else
        grep -v '^chaos: duplicate' "$log" | tail -40 >&2
        echo "chaos: FAILED seed=$seed (full log $log; worker dirs named in it); repeat with:" >&2
        echo "  RS_CHAOS_SEED=$seed RS_CHAOS_KILLS=$KILLS" \
            "RS_CHAOS_CONTRACTS=$CONTRACTS RS_CHAOS_WORKERS=$WORKERS $BIN --filter 'chaos/*'" >&2
        exit 1
    fi
done
echo "chaos: $RUNS runs passed" >&2
