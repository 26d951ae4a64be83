#!/usr/bin/env bash
# callgrind_e2e.sh — the worker's instructions per input event, by part:
# a repeatable budget (instruction counts do not depend on the machine's
# load, where its rate does).
#
#   bench/callgrind_e2e.sh [BUILD_DIR] [CONTRACTS] [PARTITIONS]
#
# Runs bench_e2e (one raw run; the figures that matter here are not its
# rates) with the worker under `valgrind --tool=callgrind`, through a
# --bin wrapper that also raises the worker's kafka.session.timeout.ms
# from bench_e2e's 6,000 to 60,000: under valgrind a batch takes seconds,
# librdkafka's heartbeat thread starves, and the group would evict the
# worker mid-book. Then it prints, per input event:
#   - the whole process, and the instructions of each shared object
#     (self cost: the program's own code, libc, librdkafka, jemalloc,
#     RocksDB, ...);
#   - the inclusive cost of the parts of the worker's loop (decode, the
#     engine without its outputs, journal entries encoded and produced,
#     balance snapshots, the contract records and seen ids staged for the
#     store and the changelog, the contracts' stored offsets, the store
#     commit, the consume and copy of input records).
# WORKER_CONFIG: more bench_e2e arguments (e.g. "--worker-config
# kafka.linger.ms=20"), to compare settings by their instructions.
# Needs valgrind (Debian: valgrind). Prints its progress to stderr; the
# callgrind output is kept (its path is printed) for callgrind_annotate.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
CONTRACTS=${2:-5000}
PARTITIONS=${3:-8}
command -v valgrind >/dev/null || {
    echo "callgrind_e2e: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
}
WORK=$(mktemp -d)
OUT=$WORK/callgrind.out
cat >"$WORK/wrap.sh" <<EOF
#!/bin/sh
if [ "\$1" = worker ]; then
    sed -i 's/^kafka.session.timeout.ms=.*/kafka.session.timeout.ms=60000/' "\$3"
    exec valgrind --tool=callgrind --callgrind-out-file=$OUT "$BUILD/revstream" "\$@"
fi
exec "$BUILD/revstream" "\$@"
EOF
chmod +x "$WORK/wrap.sh"

echo "callgrind_e2e: $CONTRACTS contracts on $PARTITIONS partitions, the worker under callgrind (a minute or more)" >&2
"$BUILD/bench_e2e" --contracts "$CONTRACTS" --partitions "$PARTITIONS" --raw-runs 1 ${WORKER_CONFIG:-} \
    --bin "$WORK/wrap.sh" >"$WORK/bench.log" 2>&1 || {
    cat "$WORK/bench.log" >&2
    exit 1
}
grep -E "^bench_e2e: (book|worker rate)" "$WORK/bench.log"
events=$(sed -n 's/^bench_e2e: worker rate=.* records=\([0-9]*\).*/\1/p' "$WORK/bench.log")
[ -n "$events" ] && [ "$events" -gt 0 ] || {
    echo "callgrind_e2e: no records in the bench's output" >&2
    exit 1
}

callgrind_annotate --threshold=100 "$OUT" >"$WORK/self.txt" 2>/dev/null
callgrind_annotate --inclusive=yes --threshold=100 "$OUT" >"$WORK/incl.txt" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1; exit}' "$WORK/self.txt")

echo "callgrind_e2e: events=$events instructions=$total per_event=$((total / events))"
# self cost by shared object
grep -E '^ *[0-9,]+ \( *[0-9.]+%\)  .*\[/' "$WORK/self.txt" |
    sed -E 's/^ *([0-9,]+) .*\[([^]]*)\]$/\1 \2/' |
    awk -v ev="$events" -v tot="$total" '{ n = $1; gsub(",", "", n); o[$2] += n }
        END { for (k in o) if (o[k] * 200 > tot) {
                  m = k; sub(".*/", "", m)
                  printf "callgrind_e2e: object %s per_event=%d share=%.1f%%\n", m, o[k] / ev, 100 * o[k] / tot } }' |
    sort -t= -k3 -rn

# inclusive cost of a function (the first line naming it)
incl() {
    awk -v f="$1" '$0 ~ ("[:]" f " \\[") { gsub(",", "", $1); print $1; exit }' "$WORK/incl.txt"
}
part() { # name, instructions
    printf "callgrind_e2e: part %-16s per_event=%6d share=%5.1f%%\n" "$1" $(($2 / events)) \
        "$(awk -v a="$2" -v t="$total" 'BEGIN { printf "%.1f", 100 * a / t }')"
}
n() { local v; v=$(incl "$1"); echo "${v:-0}"; }
decode=$(n rs_avro_decode_event)
entries=$(n rs_worker_on_entry)
balances=$(n rs_worker_produce_balances)
engine=$(($(n rs_engine_apply) + $(n rs_engine_advance) - entries))
staging=$(($(n rs_pstate_contract_record) + $(n rs_worker_stage_seen) + $(n rs_worker_produce_clq)))
offsets=$(n applied_offset)
commit=$(n rs_state_batch_commit)
consume=$(($(n rd_kafka_consumer_poll) + $(n rs_worker_take_message)))
part decode "$decode"
part engine "$engine"
part journal_entries "$entries"
part balances "$balances"
part state_staging "$staging"
part contract_offsets "$offsets"
part store_commit "$commit"
part consume "$consume"
part other $((total - decode - engine - entries - balances - staging - offsets - commit - consume))
echo "callgrind_e2e: callgrind output $OUT (callgrind_annotate --inclusive=yes $OUT)"
