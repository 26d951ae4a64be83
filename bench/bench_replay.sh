#!/bin/sh
# bench_replay.sh — `revstream replay` against a jansson parse-only pass of
# the same file, in the same run: events/s of each, their ratio, and replay's
# peak RSS (which should be the engine's state, not the journal).
#
# Usage: bench/bench_replay.sh [BUILD_DIR] [CONTRACTS] [REPORT]
#   BUILD_DIR  the CMake build directory (default: build)
#   CONTRACTS  size of the generated book (default: 20000; seed 1)
#   REPORT     the replay report (default: balances); journal prints csv
# Needs GNU time (/usr/bin/time) for the peak RSS.
set -eu
build=${1:-build}
contracts=${2:-20000}
report=${3:-balances}
bin=$build/revstream
parse=$build/bench_parse
for x in "$bin" "$parse" /usr/bin/time; do
    [ -x "$x" ] || { echo "bench_replay: $x is missing (build it first)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_replay.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
book=$tmp/book.jsonl
"$bin" generate --contracts "$contracts" --seed 1 --out "$book" 2>/dev/null
events=$(wc -l < "$book")

now() { date +%s.%N; }

"$parse" "$book" > "$tmp/parse.out"
parse_rate=$(sed -n 's/.* rate=\([0-9]*\)\/s$/\1/p' "$tmp/parse.out")

format=json
[ "$report" = journal ] && format=csv
t0=$(now)
/usr/bin/time -f "%M" -o "$tmp/time.out" \
    "$bin" replay "$book" --report "$report" --format "$format" > /dev/null 2> "$tmp/replay.err"
t1=$(now)
rss_kb=$(tail -n 1 "$tmp/time.out")
entries=$(sed -n 's/.* entries=\([0-9]*\) .*/\1/p' "$tmp/replay.err")

awk -v c="$contracts" -v ev="$events" -v en="$entries" -v t0="$t0" -v t1="$t1" \
    -v pr="$parse_rate" -v rss="$rss_kb" -v rep="$report" 'BEGIN {
    s = t1 - t0
    rate = ev / s
    printf "book:    contracts=%d events=%d entries=%d\n", c, ev, en
    printf "parse:   %.0f events/s (json_loadb per line)\n", pr
    printf "replay:  %.0f events/s (--report %s, %.2f s wall, parse + engine + report)\n", rate, rep, s
    printf "ratio:   replay/parse = %.2f\n", rate / pr
    printf "peak RSS: %.1f MB (%.0f bytes per entry)\n", rss / 1024, rss * 1024 / en
}'
