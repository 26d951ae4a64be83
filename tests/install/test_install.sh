#!/usr/bin/env bash
# test_install.sh BUILD SOURCE — `cmake --install` into a temp prefix, then
# the installed program finds its schemas next to itself:
#   1. the layout: PREFIX/bin/revstream, PREFIX/share/revstream/schemas
#      (ids.properties and every .avsc of the source tree),
#      PREFIX/share/revstream/examples;
#   2. the prefix is moved after installing (the path is found from the
#      binary at run time, not compiled in) and the binary is also run
#      through a symlink from another directory (/proc/self/exe resolves it);
#   3. `worker --check` and `encode --help` name the moved prefix's schema
#      directory as the default, not the source tree's;
#   4. `encode` then `decode` of the sample book with the default schemas
#      gives back every event, and `replay` prints the balances;
#   5. the demo (embedded broker, Avro produce, worker, reports) runs with
#      the installed binary (scripts/run-demo.sh), and again with the root
#      filesystem read-only and only /tmp writable, as in the container.
# Prints one "ok"/"FAIL" line per check and "N passed, N failed" at the end;
# exit 1 on any failure. The temp dir is removed unless RS_TEST_KEEP=1.
set -uo pipefail
BUILD=$(cd "${1:?usage: test_install.sh BUILD SOURCE}" && pwd)
SRC=$(cd "${2:?usage: test_install.sh BUILD SOURCE}" && pwd)
WORK=$(mktemp -d /tmp/rs-install.XXXXXX)
trap '[[ "${RS_TEST_KEEP:-}" == 1 ]] || rm -rf "$WORK"' EXIT
CHECK_LOG="$WORK/last.out"
# shellcheck source=tools/ci/checks.sh
. "$SRC/tools/ci/checks.sh"

cmake --install "$BUILD" --prefix "$WORK/first" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; check_failed=1; checks_finish; exit 1; }
mv "$WORK/first" "$WORK/moved"
P="$WORK/moved"
BIN="$P/bin/revstream"
SCHEMAS="$P/share/revstream/schemas"
mkdir -p "$WORK/elsewhere"
ln -s "$BIN" "$WORK/elsewhere/revstream"

layout() {
    [[ -x "$BIN" ]] || { echo "no $BIN"; return 1; }
    [[ -f "$SCHEMAS/ids.properties" ]] || { echo "no ids.properties"; return 1; }
    for f in "$SRC"/schemas/*.avsc; do
        cmp "$f" "$SCHEMAS/$(basename "$f")" || return 1
    done
    [[ -f "$P/share/revstream/examples/worker.properties" ]] || return 1
    [[ -f "$P/share/revstream/examples/policy.properties" ]]
}
check "layout bin/, share/revstream/schemas, share/revstream/examples" layout

default_dir() { # default_dir BIN: worker --check names the installed schemas
    REVSTREAM_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9 REVSTREAM_STATE_DIR="$WORK/state" \
        "$1" worker --check >"$WORK/check.out" || return 1
    grep -q " schema.dir=$SCHEMAS " "$WORK/check.out" || { cat "$WORK/check.out"; return 1; }
    ! grep -q "$SRC/schemas" "$WORK/check.out"
}
check "worker --check: schema.dir is the moved prefix's" default_dir "$BIN"
check "worker --check through a symlink elsewhere" default_dir "$WORK/elsewhere/revstream"
check "encode --help names the installed default" \
    bash -c "'$BIN' encode --help | grep -F '(default $SCHEMAS)'"

roundtrip() {
    local book="$SRC/examples/sample-book.jsonl" n=0 t
    mkdir -p "$WORK/avro"
    (cd "$WORK" && "$BIN" encode --out-dir "$WORK/avro" "$book") 2>"$WORK/encode.err"
    [[ $? -le 2 ]] || { cat "$WORK/encode.err"; return 1; }
    for t in contracts invoices payments usage; do
        "$BIN" decode "$WORK/avro/$t.avrobin" >"$WORK/$t.jsonl" || return 1
        n=$((n + $(grep -c . "$WORK/$t.jsonl")))
    done
    # every event but the ones encode refused comes back
    local want=$(($(grep -c . "$book") - $(grep -c "line [0-9]*:" "$WORK/encode.err")))
    [[ $n -eq $want && $n -gt 0 ]] || { echo "decoded $n events, want $want"; return 1; }
}
check "encode + decode the sample book with the default schemas" roundtrip
check "replay prints balances" bash -c \
    "'$BIN' replay '$SRC/examples/sample-book.jsonl' --through 2026-06 --format csv | grep -q '^contract_id'"
check "the demo with the installed binary" bash -c \
    "'$SRC/scripts/run-demo.sh' '$BIN' | grep -q 'Deferred revenue rollforward, USD'"

# The image runs with a read-only root filesystem, state on a volume and an
# emptyDir /tmp. The same here: a private mount namespace where / is
# remounted read-only and only /tmp stays writable (the demo keeps its
# broker files and the worker's state dir there). Needs CAP_SYS_ADMIN
# (root); without it this check is reported as skipped, not passed.
readonly_root() {
    unshare --mount --propagation private bash -c '
        set -e
        mount --bind /tmp /tmp
        mount -o remount,bind,ro /
        if touch /rs-readonly-probe 2>/dev/null; then
            rm -f /rs-readonly-probe
            echo "the root filesystem is still writable"
            exit 1
        fi
        exec "$0" "$@"' "$SRC/scripts/run-demo.sh" "$BIN" >"$WORK/ro-demo.out" 2>&1 ||
        { cat "$WORK/ro-demo.out"; return 1; }
    grep -q 'Deferred revenue rollforward, USD' "$WORK/ro-demo.out"
}
if unshare --mount --propagation private true 2>/dev/null; then
    check "the demo on a read-only root filesystem (only /tmp writable)" readonly_root
else
    echo "skip the demo on a read-only root filesystem: no mount namespace here"
fi

checks_finish
