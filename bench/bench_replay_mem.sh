#!/bin/sh
# bench_replay_mem.sh — replay's peak RSS per simple contract (one annual
# line, one invoice, one payment: `revstream generate --mix simple`) at
# several book sizes, with the jansson parse-only rate of the same file in
# the same run (bench_parse) and replay's rate against it.
#
# Usage: bench/bench_replay_mem.sh [BUILD_DIR] [SIZES] [REPORTS]
#   BUILD_DIR  the CMake build directory (default: build)
#   SIZES      contract counts (default: "100000 1000000"; seed 1)
#   REPORTS    replay reports (default: "balances waterfall rollforward")
# For each size: one parse-only pass, then one replay per report (all JSON
# to /dev/null). Printed per run: events/s, replay/parse ratio (wall and CPU
# time), peak RSS and bytes per contract, against the issue's 1 KiB target.
# The 1M book is ~0.9 GB of JSON in $TMPDIR (else /tmp), removed at exit.
# Needs GNU time (/usr/bin/time).
set -eu
build=${1:-build}
sizes=${2:-"100000 1000000"}
reports=${3:-"balances waterfall rollforward"}
bin=$build/revstream
parse=$build/bench_parse
for x in "$bin" "$parse" /usr/bin/time; do
    [ -x "$x" ] || { echo "bench_replay_mem: $x is missing (build it first)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_replay_mem.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

printf '%-9s %-11s %9s %12s %12s %10s %9s %11s %10s\n' contracts report events \
    "parse ev/s" "replay ev/s" "ratio wall" "ratio cpu" "peak RSS MB" "B/contract"
for n in $sizes; do
    book=$tmp/simple.jsonl
    echo "bench_replay_mem: generating $n simple contracts" >&2
    "$bin" generate --mix simple --contracts "$n" --seed 1 --out "$book" 2>/dev/null
    events=$(wc -l < "$book")
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/p.time" "$parse" "$book" > /dev/null
    for rep in $reports; do
        echo "bench_replay_mem: replay $n contracts --report $rep" >&2
        /usr/bin/time -f "%e %U %S %M" -o "$tmp/r.time" \
            "$bin" replay "$book" --report "$rep" --format json > /dev/null 2> "$tmp/replay.err" ||
            { echo "bench_replay_mem: replay failed:" >&2; tail -n 3 "$tmp/replay.err" >&2; exit 1; }
        echo "$n $rep $events $(tail -n 1 "$tmp/p.time") $(tail -n 1 "$tmp/r.time")" |
            awk '{
                n = $1; ev = $3; pw = $4; pc = $5 + $6; rw = $8; rc = $9 + $10; rss = $11
                printf "%-9d %-11s %9d %12.0f %12.0f %10.2f %9.2f %11.1f %10.0f%s\n", n, $2, ev,
                    ev / pw, ev / rw, pw / rw, pc / rc, rss / 1024, rss * 1024 / n,
                    rss * 1024 / n <= 1024 ? "  (<= 1 KiB)" : "  (> 1 KiB)"
            }'
    done
    rm -f "$book"
done
