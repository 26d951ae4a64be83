#!/bin/sh
# bench_close.sh BUILD_DIR [N] — the month-end close through the store as the
# worker runs it: N contracts (default 1,000,000) in one partition closed on
# one thread (the baseline), and the same N spread over PARTS partitions
# (default 2) closed on one thread and on THREADS threads (default 2; the
# worker's apply lanes, worker.threads, close their partitions at once).
# Each run (bench_cache run, its own process, on a fresh copy of its store)
# opens the store with the default 128 MiB cache, applies EVENTS payments
# (default 200,000: the cache is full when the month ends), then closes
# January; a raw scan of the same store follows on one thread and on
# THREADS. REPEAT rounds (default 3) of the three runs, interleaved; then the
# medians (wall and CPU contracts/s: the CPU of the closing threads), the
# ratio to the one-partition, one-thread close and to the raw scan, and the
# closing threads' voluntary (waits) and involuntary (preempted: the
# machine is busy, wall figures are not the close's) context switches.
# Stores go under ${TMPDIR:-/tmp}/bench_close.$$ and are removed at the end.
set -eu
build=${1:?usage: bench_close.sh BUILD_DIR [N]}
n=${2:-1000000}
parts=${PARTS:-2}
threads=${THREADS:-2}
events=${EVENTS:-200000}
repeat=${REPEAT:-3}
dir=${TMPDIR:-/tmp}/bench_close.$$
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
"$build/bench_cache" build "$dir/s1" "$n" 1 2>/dev/null
"$build/bench_cache" build "$dir/sp" "$n" "$parts" 2>/dev/null
out="$dir/figures"
: >"$out"
one() { # label store threads
    rm -rf "$dir/w"
    cp -r "$dir/$2" "$dir/w"
    "$build/bench_cache" run "$dir/w" 128 "$events" 10000 1 6 "$3" 2>&1 | grep -v '^{' \
        >"$dir/last"
    cat "$dir/last" >&2
    awk -v l="$1" '
        function f(k,   i, a) { for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } }
        /^close1/ { w = f("contracts_per_s"); c = f("per_cpu_s"); wt = f("thread_waits"); pr = f("preempted") }
        /^baseline1 raw_scan contracts/ { s = f("contracts_per_s") }
        END { print l, w, c, s, wt, pr }' "$dir/last" >>"$out"
}
for r in $(seq "$repeat"); do
    echo "== round $r: contracts=$n partitions=1 threads=1 (baseline)" >&2
    one p1t1 s1 1
    echo "== round $r: contracts=$n partitions=$parts threads=1" >&2
    one "p${parts}t1" sp 1
    echo "== round $r: contracts=$n partitions=$parts threads=$threads" >&2
    one "p${parts}t$threads" sp "$threads"
done
med() { # label column
    awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$out" | sort -n |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
base=$(med p1t1 2)
echo "contracts=$n events=$events cache_mb=128 rounds=$repeat (medians; wall and CPU contracts/s of the close, raw scan on one thread after it)"
for l in p1t1 "p${parts}t1" "p${parts}t$threads"; do
    w=$(med "$l" 2)
    c=$(med "$l" 3)
    s=$(med "$l" 4)
    echo "$l close_wall_per_s=$w close_cpu_per_s=$c raw_scan_per_s=$s ratio_to_p1t1=$(awk -v a="$w" -v b="$base" 'BEGIN { printf "%.2f", a / b }') close_to_scan=$(awk -v a="$w" -v b="$s" 'BEGIN { printf "%.3f", a / b }') thread_waits=$(med "$l" 5) preempted=$(med "$l" 6)"
done
