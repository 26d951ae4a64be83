#!/usr/bin/env bash
# run-demo.sh BIN — the demo, on the embedded broker:
#   1. start `BIN broker` (librdkafka's mock cluster, 4 partitions);
#   2. produce the sample book (examples/sample-book.jsonl) to the input
#      topics, Avro-encoded, keyed by contract id;
#   3. run one worker until it has caught up;
#   4. read the journal topic (and the contract terms from the state
#      changelog topic, for what is still to be recognized) and print the revenue waterfall, the deferred-revenue
#      rollforward (with its tie to the waterfall) and the exceptions as of
#      June 2026;
#   5. stop everything it started.
# The sample book holds one deliberately bad event (an amount with too many
# decimals): the worker sends it to the dead-letter topic and goes on.
set -euo pipefail

BIN=${1:-build/revstream}
HERE=$(cd "$(dirname "$0")" && pwd)
BOOK="$(cd "$HERE/.." && pwd)/examples/sample-book.jsonl"
THROUGH=2026-06
WORK=$(mktemp -d /tmp/revstream-demo.XXXXXX)
BROKER_PID=

cleanup() {
    if [[ -n "$BROKER_PID" ]]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    [[ -n "${KEEP_DEMO:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "demo: $*" >&2
    for f in "$WORK"/*.log; do
        [[ -s "$f" ]] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}

[[ -x "$BIN" ]] || fail "$BIN is not an executable (run scripts/demo)"

echo "== 1. Starting the embedded Kafka broker"
"$BIN" broker --partitions 4 --bootstrap-file "$WORK/bootstrap" >/dev/null 2>"$WORK/broker.log" &
BROKER_PID=$!
for _ in $(seq 100); do
    [[ -s "$WORK/bootstrap" ]] && break
    sleep 0.1
done
[[ -s "$WORK/bootstrap" ]] || fail "the broker did not start"
BOOTSTRAP=$(cat "$WORK/bootstrap")
echo "   bootstrap $BOOTSTRAP; topics contracts, invoices, payments, usage -> revenue.journal,"
echo "   revenue.deferred-balances, revenue.dlq"

echo "== 2. Producing the sample book ($(grep -c . "$BOOK") events) as Avro records"
"$BIN" produce --bootstrap "$BOOTSTRAP" "$BOOK" 2>"$WORK/produce.log" ||
    fail "producing the sample book failed"

echo "== 3. Running a worker until it has caught up"
cat >"$WORK/worker.properties" <<EOF
kafka.bootstrap.servers=$BOOTSTRAP
state.dir=$WORK/state
exit.when.idle=true
batch.max.ms=200
log.format=text
kafka.session.timeout.ms=6000
kafka.heartbeat.interval.ms=500
EOF
timeout 120 "$BIN" worker --config "$WORK/worker.properties" 2>"$WORK/worker.log" ||
    fail "the worker failed"
grep -E "worker: .*(done|stopped|idle)" "$WORK/worker.log" | tail -1 | sed 's/^/   /' || true

report() {
    "$BIN" report --config "$WORK/worker.properties" --through "$THROUGH" \
        --format table --report "$1" 2>>"$WORK/report.log" || fail "the $1 report failed"
}

echo "== 4. Reports from the journal topic, as of the end of $THROUGH"
echo
echo "The waterfall's Recognized is all revenue recognized in a month; the rollforward's"
echo "Recognized is only the part released from deferred revenue. The rest (Not via"
echo "deferred) was recognized before it was billed - usage and services billed in"
echo "arrears, carried as unbilled receivable - so it never enters the rollforward. The"
echo "table under the rollforward adds the two back to the waterfall's total."
echo
report waterfall
echo
report rollforward
echo
echo "What finance should look at (the waterfall's last 3,000.00 of deferred revenue is"
echo "the first row: billed above its allocated price, it outlives its service):"
echo
report exceptions
echo
dlq=$(grep -Eo 'dlq=[0-9]+' "$WORK/worker.log" | tail -1 || true)
echo "Dead letters: ${dlq#dlq=} (the sample's intentional bad event: an amount with three"
echo "decimals in USD, refused with a message naming the event and the field)."
grep -E "dead.letter|dlq" "$WORK/worker.log" | grep -Eo 'error="[^"]*"' | head -3 | sed 's/^/   /' || true
echo
echo "== 5. Stopping the broker"
