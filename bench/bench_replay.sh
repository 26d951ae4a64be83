#!/bin/sh
# bench_replay.sh — `revstream replay` against a jansson parse-only pass of
# the same file, in the same run: events/s of each, their ratio, and replay's
# peak RSS (which should be the engine's state, not the journal).
#
# Usage: bench/bench_replay.sh [BUILD_DIR] [CONTRACTS] [REPORT] [ROUNDS]
#   BUILD_DIR  the CMake build directory (default: build)
#   CONTRACTS  size of the generated book (default: 20000; seed 1)
#   REPORT     the replay report (default: balances); journal prints csv
#   ROUNDS     parse and replay runs, alternating (default: 5)
# Each round runs the parse-only pass and then replay. Printed per round and
# as medians: the wall-clock rates and their ratio, and the ratio of CPU time
# (user + system) of the two processes, which a busy machine disturbs less.
# Needs GNU time (/usr/bin/time).
set -eu
build=${1:-build}
contracts=${2:-20000}
report=${3:-balances}
rounds=${4:-5}
bin=$build/revstream
parse=$build/bench_parse
for x in "$bin" "$parse" /usr/bin/time; do
    [ -x "$x" ] || { echo "bench_replay: $x is missing (build it first)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_replay.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
book=$tmp/book.jsonl
echo "bench_replay: generating $contracts contracts" >&2
"$bin" generate --contracts "$contracts" --seed 1 --out "$book" 2>/dev/null
events=$(wc -l < "$book")
format=json
[ "$report" = journal ] && format=csv

: > "$tmp/rounds"
r=1
while [ "$r" -le "$rounds" ]; do
    echo "bench_replay: round $r/$rounds" >&2
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/p.time" "$parse" "$book" > /dev/null
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/r.time" \
        "$bin" replay "$book" --report "$report" --format "$format" > /dev/null 2> "$tmp/replay.err"
    echo "$(tail -n 1 "$tmp/p.time") $(tail -n 1 "$tmp/r.time")" >> "$tmp/rounds"
    r=$((r + 1))
done
entries=$(sed -n 's/.* entries=\([0-9]*\) .*/\1/p' "$tmp/replay.err")

awk -v c="$contracts" -v ev="$events" -v en="$entries" -v rep="$report" '
function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    n++
    pw[n] = $1; pc[n] = $2 + $3; rw[n] = $5; rc[n] = $6 + $7; rss[n] = $8
    wr[n] = $1 / $5; cr[n] = pc[n] / rc[n]
    printf "round %d: parse %.0f/s (cpu %.2fs)  replay %.0f/s (cpu %.2fs)  ratio wall %.2f cpu %.2f\n", n, ev / $1, pc[n], ev / $5, rc[n], wr[n], cr[n]
}
END {
    printf "book:     contracts=%d events=%d entries=%d rounds=%d\n", c, ev, en, n
    printf "parse:    %.0f events/s median (json_loadb per line)\n", ev / median(pw, n)
    printf "replay:   %.0f events/s median (--report %s: parse + engine + report)\n", ev / median(rw, n), rep
    printf "ratio:    replay/parse = %.2f median of rounds (wall); %.2f (cpu time)\n", median(wr, n), median(cr, n)
    printf "peak RSS: %.1f MB (%.0f bytes per entry)\n", median(rss, n) / 1024, median(rss, n) * 1024 / en
}' "$tmp/rounds"
