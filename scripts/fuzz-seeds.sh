#!/usr/bin/env bash
# fuzz-seeds.sh [BIN] — rewrite the committed seed corpora of the fuzz targets
# (tests/fuzz/corpus/<target>/) from the sample book, with BIN (default
# build/revstream) for the Avro encoding. Run it again when the event
# contract or the topic schemas change; commit what it writes.
#
#   fuzz_codec_json/  up to 2 lines of examples/sample-book.jsonl per event type;
#   fuzz_codec_avro/  from `BIN encode` of the same book, up to 3 records per
#                     topic as fuzz_codec_avro.c frames them: the selector byte
#                     of the topic's schema (contracts 0, invoices 1, payments 2,
#                     usage 3) then the Avro body (the value less its 5-byte
#                     header); and per topic one record as 0x80 then the whole
#                     value, header included.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/revstream}
BOOK=examples/sample-book.jsonl
CORPUS=tests/fuzz/corpus
[[ -x "$BIN" ]] || { echo "fuzz-seeds: $BIN is not an executable (build first)" >&2; exit 1; }

rm -rf "$CORPUS/fuzz_codec_json" "$CORPUS/fuzz_codec_avro"
mkdir -p "$CORPUS/fuzz_codec_json" "$CORPUS/fuzz_codec_avro"

declare -A seen=()
while IFS= read -r line; do
    type=$(grep -o '"type":"[a-z_.]*"' <<<"$line" | head -1 | cut -d'"' -f4)
    n=${seen[$type]:-0}
    ((n < 2)) || continue
    seen[$type]=$((n + 1))
    printf '%s' "$line" >"$CORPUS/fuzz_codec_json/${type//./_}-$((n + 1)).json"
done <"$BOOK"

work=$(mktemp -d /tmp/revstream-seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$BIN" encode --out-dir "$work" "$BOOK" 2>/dev/null

u32() { # u32 FILE OFFSET: the big-endian 32-bit integer at OFFSET
    od -An -tu1 -j "$2" -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'
}
sel=0
for topic in contracts invoices payments usage; do
    f="$work/$topic.avrobin"
    size=$(stat -c %s "$f")
    off=0
    k=0
    while ((off < size && k < 3)); do
        rlen=$(u32 "$f" "$off")
        klen=$(u32 "$f" $((off + 4)))
        voff=$((off + 8 + klen))
        vlen=$((rlen - 4 - klen))
        k=$((k + 1))
        { printf "\\x0$sel"; tail -c +$((voff + 6)) "$f" | head -c $((vlen - 5)); } \
            >"$CORPUS/fuzz_codec_avro/$topic-$k.bin"
        if ((k == 1)); then
            { printf '\x80'; tail -c +$((voff + 1)) "$f" | head -c "$vlen"; } \
                >"$CORPUS/fuzz_codec_avro/$topic-framed.bin"
        fi
        off=$((off + 4 + rlen))
    done
    sel=$((sel + 1))
done
echo "fuzz-seeds: $(ls "$CORPUS/fuzz_codec_json" | wc -l) JSON and" \
    "$(ls "$CORPUS/fuzz_codec_avro" | wc -l) Avro seeds in $CORPUS" >&2
