#!/usr/bin/env bash
# batch_sweep.sh — worker throughput against batch.max.records, as a table
# and an SVG chart (bench/README.md shows the chart).
#
#   bench/batch_sweep.sh [BUILD_DIR] [CONTRACTS] [OUT.svg]
#
# For each batch size it runs bench_e2e (RAW_RUNS raw runs, default 3, their
# median the baseline; the worker once) on a fresh embedded broker and the
# same generated book, and records the
# worker's rate, its ratio to the raw consumer of that run, its events per
# CPU second (user + sys: steadier than the rate when other programs load
# the machine) and its peak RSS. PARTITIONS (default 16) is bench_e2e's
# --partitions, BATCH_MS (default 100, the worker's default) batch.max.ms.
# The chart is written with awk: no plotting package needed.
set -euo pipefail

BUILD=${1:-build}
CONTRACTS=${2:-5000}
OUT=${3:-bench/batch-sweep.svg}
SIZES=${SIZES:-"1000 10000 25000 50000 100000 200000"}
PARTITIONS=${PARTITIONS:-16}
BATCH_MS=${BATCH_MS:-100}
RAW_RUNS=${RAW_RUNS:-3}
DATA=$(mktemp)
trap 'rm -f "$DATA"' EXIT

for b in $SIZES; do
    echo "batch_sweep: batch.max.records=$b" >&2
    out=$("$BUILD/bench_e2e" --contracts "$CONTRACTS" --partitions "$PARTITIONS" --raw-runs "$RAW_RUNS" \
        --worker-config "batch.max.records=$b" --worker-config "batch.max.ms=$BATCH_MS" 2>/dev/null)
    rate=$(sed -n 's/^bench_e2e: worker rate=\([0-9]*\)\/s.*/\1/p' <<<"$out")
    raw=$(sed -n 's/^bench_e2e: raw_consumer median_rate=\([0-9]*\)\/s.*/\1/p' <<<"$out")
    ratio=$(sed -n 's/^bench_e2e: ratio worker\/raw=\([0-9.]*\).*/\1/p' <<<"$out")
    cpu=$(sed -n 's/^bench_e2e: worker cpu_seconds=.* records_per_cpu_second=\([0-9]*\).*/\1/p' <<<"$out")
    rss=$(sed -n 's/^bench_e2e: worker rate=.* peak_rss_mib=\([0-9.]*\).*/\1/p' <<<"$out")
    echo "$b $rate $raw $ratio $cpu $rss" | tee -a "$DATA"
done

awk -v title="revstream worker against batch.max.records ($CONTRACTS contracts, $PARTITIONS partitions)" '
{ n++; b[n] = $1; r[n] = $2; ratio[n] = $4; c[n] = $5; rss[n] = $6
  if ($2 > max) max = $2; if ($5 > max) max = $5 }
END {
    W = 720; H = 400; L = 70; R = 20; T = 56; B = 70
    pw = W - L - R; ph = H - T - B
    if (max <= 0) max = 1
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"%d\" y=\"20\" font-size=\"14\">%s</text>\n", L, title
    printf "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"#4a7ab5\"/><text x=\"%d\" y=\"40\">events/s (label: ratio to the raw consumer of the same run)</text>\n", L, L + 16
    printf "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"#e08a3c\"/><text x=\"%d\" y=\"40\">events per worker CPU second</text>\n", L + 380, L + 396
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + ph, L + pw, T + ph
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + ph
    for (i = 0; i <= 4; i++) {
        y = T + ph - ph * i / 4
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>\n", L - 6, y + 4, max * i / 4
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", L, y, L + pw, y
    }
    bw = pw / n * 0.35
    for (i = 1; i <= n; i++) {
        x = L + pw * (i - 0.5) / n
        h = ph * r[i] / max
        printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4a7ab5\"/>\n", x - bw, T + ph - h, bw, h
        printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>\n", x - bw / 2, T + ph - h - 4, ratio[i]
        h = ph * c[i] / max
        printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#e08a3c\"/>\n", x, T + ph - h, bw, h
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x, T + ph + 16, b[i]
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f MiB</text>\n", x, T + ph + 32, rss[i]
    }
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">batch.max.records (below: the worker peak RSS)</text>\n", L + pw / 2, H - 12
    printf "</svg>\n"
}' "$DATA" >"$OUT"
echo "batch_sweep: wrote $OUT" >&2
