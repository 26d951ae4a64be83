#!/usr/bin/env bash
# ablation.sh — what the worker's mandatory work costs it: the worker's
# rate against the bare consumer's with parts of its work switched off, so
# the ratio each part leaves can be read off in one run.
#
#   bench/ablation.sh [BUILD_DIR] [CONTRACTS] [PARTITIONS] [ROUNDS]
#
# The switches are not in the product: bench/ablation.patch adds them to a
# copy of the tree (a git worktree of HEAD in a temporary directory, built
# with the same build type as BUILD_DIR), read from the environment once:
#   RS_ABLATE_PRODUCE=1  journal entries and balance snapshots encoded, not
#                        produced (librdkafka's share of the outputs);
#   RS_ABLATE_OUTPUTS=1  neither encoded nor produced (the engine still
#                        posts every entry and computes every balance);
#   RS_ABLATE_STATE=1    contract records and seen ids staged as always,
#                        then dropped: no store write, no changelog.
# Every mode still consumes and decodes every record and applies every
# event. The patched worker's outputs and state are wrong by design: this
# is a measurement, never a deployment. When the patch no longer applies
# to HEAD the script says so: refresh it from the two functions it names.
#
# Modes run alternated, ROUNDS times (default 3), each a bench_e2e run
# (RAW_RUNS raw runs, default 3, their median its baseline) on a fresh
# broker and the same book; the medians of each mode's ratios and rates
# are printed last.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
CONTRACTS=${2:-20000}
PARTITIONS=${3:-16}
ROUNDS=${4:-3}
RAW_RUNS=${RAW_RUNS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
    git -C "$ROOT" worktree remove --force "$WORK/src" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
echo "ablation: a worktree of HEAD with bench/ablation.patch, built ${type:-RelWithDebInfo} (minutes)" >&2
git -C "$ROOT" worktree add --detach "$WORK/src" HEAD >/dev/null 2>&1
if ! git -C "$WORK/src" apply "$HERE/ablation.patch"; then
    echo "ablation: bench/ablation.patch does not apply to HEAD any more" >&2
    exit 1
fi
cmake -S "$WORK/src" -B "$WORK/build" -DCMAKE_BUILD_TYPE="${type:-RelWithDebInfo}" \
    -DRS_BUILD_TESTS=OFF >/dev/null
cmake --build "$WORK/build" -j "$(nproc)" --target revstream >/dev/null

modes="full produce outputs state outputs+state"
declare -A ratios rates
for r in $(seq 1 "$ROUNDS"); do
    for m in $modes; do
        env=(RS_ABLATE_PRODUCE=0 RS_ABLATE_OUTPUTS=0 RS_ABLATE_STATE=0)
        case $m in
        produce) env[0]=RS_ABLATE_PRODUCE=1 ;;
        outputs) env[1]=RS_ABLATE_OUTPUTS=1 ;;
        state) env[2]=RS_ABLATE_STATE=1 ;;
        outputs+state) env[1]=RS_ABLATE_OUTPUTS=1 env[2]=RS_ABLATE_STATE=1 ;;
        esac
        echo "ablation: round $r/$ROUNDS, $m off" >&2
        out=$(env "${env[@]}" "$BUILD/bench_e2e" --contracts "$CONTRACTS" --partitions "$PARTITIONS" \
            --raw-runs "$RAW_RUNS" --bin "$WORK/build/revstream" 2>&1) || {
            echo "$out" >&2
            exit 1
        }
        raw=$(sed -n 's/^bench_e2e: raw_consumer median_rate=\([0-9]*\).*/\1/p' <<<"$out")
        rate=$(sed -n 's/^bench_e2e: worker rate=\([0-9]*\).*/\1/p' <<<"$out")
        cpu=$(sed -n 's/^bench_e2e: worker cpu_seconds=\([0-9.]*\).*/\1/p' <<<"$out")
        ratio=$(sed -n 's/^bench_e2e: ratio worker\/raw=\([0-9.]*\).*/\1/p' <<<"$out")
        echo "ablation: round=$r off=$m raw=$raw/s worker=$rate/s cpu_seconds=$cpu ratio=$ratio"
        ratios[$m]="${ratios[$m]:-} $ratio"
        rates[$m]="${rates[$m]:-} $rate"
    done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for m in $modes; do
    echo "ablation: off=$m median_ratio=$(median <<<"${ratios[$m]}") median_worker=$(median <<<"${rates[$m]}")/s ratios=${ratios[$m]# }"
done
