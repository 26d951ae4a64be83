#!/usr/bin/env bash
# check-deps.sh [BUILD] — the layout rules CMake cannot enforce by itself:
#   1. the engine archive (BUILD/workers/engine/librs_engine.a) references no
#      symbol of jansson (json_*), Avro C (avro_*), librdkafka (rd_kafka_*),
#      RocksDB (rocksdb_*), libmicrohttpd (MHD_*) or libcurl (curl_*): the
#      engine is pure C on rs_base and libc;
#   2. no file under metrics/ includes an engine header (any header of
#      workers/engine/, internal/ included): the loop feeds the metrics, they
#      never reach into the engine;
#   3. no C source or header outside tests/ is longer than MAX_LINES (1500)
#      lines: split it.
# Every rule is checked and every breach printed (file, symbol or line count);
# the exit status is 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MAX_LINES=${MAX_LINES:-1500}
ENGINE_LIB="$BUILD/workers/engine/librs_engine.a"
THIRD_PARTY='^(json_|avro_|rd_kafka_|rocksdb_|MHD_|curl_)'
fail=0

# 1. Third-party symbols in the engine.
if [[ ! -f "$ENGINE_LIB" ]]; then
    echo "check-deps: $ENGINE_LIB is missing (build $BUILD first)" >&2
    fail=1
else
    bad=$(nm -u "$ENGINE_LIB" | awk '{ print $NF }' |
        grep -E "$THIRD_PARTY" | sort -u || true)
    if [[ -n "$bad" ]]; then
        echo "check-deps: $ENGINE_LIB references third-party symbols:" >&2
        # Name the object file of each reference.
        nm -uA "$ENGINE_LIB" | awk -v re="$THIRD_PARTY" '$NF ~ re {
            n = split($1, p, ":"); print "  " p[n - 1] ": " $NF }' >&2
        fail=1
    else
        echo "check-deps: engine archive: no third-party symbols" >&2
    fi
fi

# 2. Engine headers in metrics/.
mapfile -t headers < <(git ls-files --cached --others --exclude-standard 'workers/engine/*.h' | xargs -r -n1 basename | sort -u)
hits=""
if [[ ${#headers[@]} -gt 0 ]]; then
    alt=$(printf '%s\n' "${headers[@]}" | sed 's/\./\\./g' | paste -sd'|')
    hits=$(git ls-files --cached --others --exclude-standard 'metrics/*' | xargs -r grep -nE \
        "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]([^\">]*/)?($alt)[\">]" || true)
fi
if [[ -n "$hits" ]]; then
    echo "check-deps: metrics/ includes engine headers:" >&2
    sed 's/^/  /' <<<"$hits" >&2
    fail=1
else
    echo "check-deps: metrics/: no engine header" >&2
fi

# 3. Long sources outside tests/.
long=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' ':!:tests/**' | xargs -r wc -l |
    awk -v max="$MAX_LINES" '$2 != "total" && $1 > max { printf "  %s: %d lines\n", $2, $1 }')
if [[ -n "$long" ]]; then
    echo "check-deps: sources over $MAX_LINES lines (split them):" >&2
    echo "$long" >&2
    fail=1
else
    echo "check-deps: no source outside tests/ over $MAX_LINES lines" >&2
fi
exit $fail
