#!/usr/bin/env bash
# run-demo.sh BIN — replay the sample book (examples/sample-book.jsonl) through
# `BIN replay` as of the end of June 2026 and print, for a person: the revenue
# waterfall, the deferred-revenue rollforward and a summary of the events.
#
# The sample book holds one deliberately bad event (an amount with too many
# decimals), so `replay` exits 2 ("some event rejected"); that is expected and
# this script still exits 0. It fails (exit 1) only if BIN is missing or
# replay itself fails (exit 1: usage or I/O error) or prints no summary.
set -euo pipefail

BIN=${1:-build/revstream}
HERE=$(cd "$(dirname "$0")" && pwd)
BOOK="$(cd "$HERE/.." && pwd)/examples/sample-book.jsonl"
THROUGH=2026-06
EXPECTED_BAD=pay-1005-04-raw # the intentional bad event of the sample

if [[ ! -x "$BIN" ]]; then
    echo "demo: $BIN is not an executable (run scripts/demo)" >&2
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# replay REPORT: the report's table on $TMP/REPORT.out, logs on $TMP/REPORT.err
replay() {
    local status=0
    "$BIN" replay "$BOOK" --through "$THROUGH" --report "$1" --format table \
        >"$TMP/$1.out" 2>"$TMP/$1.err" || status=$?
    if [[ $status -ne 0 && $status -ne 2 ]]; then
        echo "demo: '$BIN replay --report $1' failed (exit $status):" >&2
        cat "$TMP/$1.err" >&2
        exit 1
    fi
}

replay waterfall
replay rollforward

# "replay: done lines=62 events=62 applied=58 duplicates=1 rejected=1 pending=1 ..."
done_line=$(grep '^replay: done ' "$TMP/waterfall.err" || true)
if [[ -z "$done_line" ]]; then
    echo "demo: replay printed no summary:" >&2
    cat "$TMP/waterfall.err" >&2
    exit 1
fi
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$done_line"; }

rule='=============================================================================='
echo "$rule"
echo " revstream demo: the sample book ($(basename "$BOOK")), as of the end of $THROUGH"
echo "$rule"
echo
echo "Seven contracts in USD and JPY: annual prepaid, onboarding + software access,"
echo "metered API usage billed in arrears, a bundle re-allocated by standalone selling"
echo "price, a monthly plan, a daily-prorated plan and a yen contract."
echo
cat "$TMP/waterfall.out"
echo
cat "$TMP/rollforward.out"
echo
echo "Events: $(field events) read | applied $(field applied) | duplicates ignored" \
    "$(field duplicates) | pending $(field pending) | rejected $(field rejected)"
if grep -q '^replay: line ' "$TMP/waterfall.err"; then
    echo "Rejected:"
    sed -n 's/^replay: /  /p' "$TMP/waterfall.err" | grep '^  line ' || true
fi
if grep -q "$EXPECTED_BAD" "$TMP/waterfall.err"; then
    echo "The rejection of $EXPECTED_BAD is intentional: the sample book carries one bad"
    echo "event (an amount with 3 decimals in USD) to show that bad input is refused with"
    echo "a clear error and the rest of the stream goes on."
fi
echo
echo "More reports: $BIN replay examples/sample-book.jsonl --report R"
echo "  with R = balances, schedule, journal, rejected or pending (see examples/README.md)."
exit 0
