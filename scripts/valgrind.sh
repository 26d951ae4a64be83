#!/usr/bin/env bash
# valgrind.sh [BIN] — valgrind memcheck on `revstream replay` and on a worker
# integration run (docs/reliability.md). BIN defaults to build/revstream (a
# build without sanitizers: valgrind and ASan do not mix).
#
#   1. `BIN replay` of examples/sample-book.jsonl, once per report
#      (balances, journal, rollforward, exceptions), with the example policy;
#   2. an embedded broker (`BIN broker`, not under valgrind), the sample
#      book produced as Avro (`BIN produce`), then `BIN worker` under valgrind
#      with exit.when.idle=true until it has consumed everything, and once
#      more on the same state directory (a restart that loads its state);
#      and a second worker on an empty state directory that restores every
#      partition from the changelog.
#
# Each run must exit 0 (replay: 0 or 2, the sample book has one rejected
# event) with no memcheck error: invalid reads and writes,
# uses of uninitialised values, invalid frees, and definite or indirect
# leaks (--errors-for-leak-kinds=definite,indirect; "possibly lost" and
# "still reachable" blocks are librdkafka's and RocksDB's threads and
# caches at exit and are not errors). Exit status 0 when all are clean, 1
# otherwise; the logs are kept in the printed directory on failure.
# valgrind comes with scripts/setup-deps.sh --dev.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/revstream}
BOOK=examples/sample-book.jsonl
WORK=$(mktemp -d /tmp/revstream-valgrind.XXXXXX)
BROKER_PID=
failed=0

cleanup() {
    if [[ -n "$BROKER_PID" ]]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [[ $failed -eq 0 && -z "${KEEP_VALGRIND:-}" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

[[ -x "$BIN" ]] || { echo "valgrind: $BIN is not an executable (build first)" >&2; exit 1; }
command -v valgrind >/dev/null || {
    echo "valgrind: not installed (scripts/setup-deps.sh --dev)" >&2
    exit 1
}

VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-origins=yes --num-callers=30
    --soname-synonyms=somalloc=*jemalloc*) # the program's allocator (CMakeLists.txt)

# vg NAME OK ARGS...: BIN ARGS under memcheck, which must exit with a status
# in OK ("0", or "0 2" for replay: the sample book has one rejected event);
# 99 is memcheck's. Prints its verdict.
vg() {
    local name=$1 ok=" $2 " rc=0 t0=$SECONDS
    shift 2
    "${VG[@]}" --log-file="$WORK/$name.vg" "$BIN" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
        rc=$?
    local summary
    summary=$(grep -h "ERROR SUMMARY" "$WORK/$name.vg" | tail -1 | sed 's/^==[0-9]*== //')
    if [[ $ok != *" $rc "* ]]; then
        echo "valgrind: $name FAILED (exit $rc; $summary) — $WORK/$name.vg, $WORK/$name.err" >&2
        grep -A20 -E "Invalid|uninitialised|definitely lost|indirectly lost|Mismatched" \
            "$WORK/$name.vg" | head -60 >&2 || true
        tail -5 "$WORK/$name.err" >&2
        failed=1
    else
        echo "valgrind: $name clean ($summary, $((SECONDS - t0))s)" >&2
    fi
}

for report in balances journal rollforward exceptions; do
    vg "replay-$report" "0 2" replay "$BOOK" --through 2026-06 --report "$report" --format json \
        --policy examples/policy.properties
done

"$BIN" broker --partitions 4 --bootstrap-file "$WORK/bootstrap" >/dev/null 2>"$WORK/broker.log" &
BROKER_PID=$!
for _ in $(seq 100); do
    [[ -s "$WORK/bootstrap" ]] && break
    sleep 0.1
done
[[ -s "$WORK/bootstrap" ]] || { echo "valgrind: the broker did not start" >&2; exit 1; }
BOOTSTRAP=$(cat "$WORK/bootstrap")
"$BIN" produce --bootstrap "$BOOTSTRAP" "$BOOK" 2>"$WORK/produce.log" || {
    echo "valgrind: producing the sample book failed" >&2
    exit 1
}
for w in a b; do
    cat >"$WORK/worker-$w.properties" <<EOF
kafka.bootstrap.servers=$BOOTSTRAP
state.dir=$WORK/state-$w
group.id=valgrind-$w
exit.when.idle=true
state.sync=false
kafka.log_level=3
log.format=text
EOF
done
vg worker-first 0 worker --config "$WORK/worker-a.properties"
vg worker-restart 0 worker --config "$WORK/worker-a.properties"
# group valgrind-b starts from the store: an empty one restores from the
# changelog that group a wrote (same topic), then consumes from its offsets
vg worker-restore 0 worker --config "$WORK/worker-b.properties"
if grep -q "restored partition=" "$WORK/worker-restore.err"; then
    echo "valgrind: worker-restore restored $(grep -c 'restored partition=' \
        "$WORK/worker-restore.err") partitions from the changelog" >&2
else
    echo "valgrind: worker-restore did not restore from the changelog" >&2
    failed=1
fi
for f in worker-first worker-restart; do
    grep -q "worker: stopping reason=idle" "$WORK/$f.err" || {
        echo "valgrind: $f did not reach idle" >&2
        failed=1
    }
done
[[ $failed -eq 0 ]] || { echo "valgrind: FAILED; logs in $WORK" >&2; exit 1; }
echo "valgrind: every run clean" >&2
