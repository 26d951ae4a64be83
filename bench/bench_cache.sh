#!/bin/sh
# bench_cache.sh BUILD_DIR [SIZES...] — bench_cache for each book size: build
# a store of N contracts (its own process), copy it, then run the worker's
# state path on the copy with the default cache (128 MiB) and with 32 MiB,
# then, as the baselines, the eager streaming close (every record the close
# changed written back: max lag 1, the worker's close before the lazy one)
# and the old way (the whole partition in memory). Each
# run applies 200,000 payments to random contracts, then closes CLOSES
# month ends (default 2: January, then February, whose records are one
# lazy close behind). Each close prints its wall and main-thread CPU
# seconds and a raw scan of the same store right after it (the baseline).
# Prints each run's figures and /usr/bin/time's peak RSS. Stores go under
# ${TMPDIR:-/tmp}/bench_cache.$$ and are removed at the end.
set -eu
build=${1:?usage: bench_cache.sh BUILD_DIR [SIZES...]}
shift
[ $# -gt 0 ] || set -- 10000 100000 1000000
closes=${CLOSES:-2}
dir=${TMPDIR:-/tmp}/bench_cache.$$
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
for n in "$@"; do
    "$build/bench_cache" build "$dir/s$n" "$n" 2>/dev/null
    for mb in 128 32; do
        rm -rf "$dir/w"
        cp -r "$dir/s$n" "$dir/w"
        echo "== contracts=$n state.cache.mb=$mb"
        /usr/bin/time -f "time: wall_s=%e max_rss_kib=%M" \
            "$build/bench_cache" run "$dir/w" "$mb" 200000 10000 "$closes" 2>&1 | grep -v '^{'
    done
    rm -rf "$dir/w"
    cp -r "$dir/s$n" "$dir/w"
    echo "== contracts=$n state.cache.mb=128 baseline: every record written back (max lag 1, the eager streaming close)"
    /usr/bin/time -f "time: wall_s=%e max_rss_kib=%M" \
        "$build/bench_cache" run "$dir/w" 128 200000 10000 "$closes" 1 2>&1 | grep -v '^{'
    rm -rf "$dir/w"
    cp -r "$dir/s$n" "$dir/w"
    echo "== contracts=$n baseline: the whole partition in memory"
    /usr/bin/time -f "time: wall_s=%e max_rss_kib=%M" \
        "$build/bench_cache" eager "$dir/w" 200000 "$closes" 2>&1 | grep -v '^{'
    rm -rf "$dir/s$n" "$dir/w"
done
