#!/usr/bin/env bash
# dockerfile-check.sh — lint the Dockerfile (make dockerfile-check; CI step
# "docker"; tools from tools/ci/install.sh): tools/ci/check-dockerfile.mjs on
# the Dockerfile must pass, and on broken copies (an invalid EXPOSE, USER
# root, a shell-form ENTRYPOINT) must fail. Prints "ok"/"FAIL" per check and
# "N passed, N failed"; exit 1 on any FAIL.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHECK="$ROOT/tools/ci/check-dockerfile.mjs"
WORK=$(mktemp -d /tmp/rs-dockerfile.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

if node "$CHECK" "$ROOT/Dockerfile" >"$WORK/log" 2>&1; then
    echo "ok   Dockerfile"
    passed=$((passed + 1))
else
    echo "FAIL Dockerfile"
    sed 's/^/     /' "$WORK/log"
    failed=$((failed + 1))
fi

refused() { # refused NAME SED-EXPR
    sed -e "$2" "$ROOT/Dockerfile" >"$WORK/Dockerfile.$1"
    if cmp -s "$ROOT/Dockerfile" "$WORK/Dockerfile.$1"; then
        echo "FAIL $1: the edit changed nothing"
        failed=$((failed + 1))
    elif node "$CHECK" "$WORK/Dockerfile.$1" >"$WORK/log" 2>&1; then
        echo "FAIL $1: a broken Dockerfile passed"
        failed=$((failed + 1))
    else
        echo "ok   $1: refused ($(head -1 "$WORK/log" | cut -c1-160))"
        passed=$((passed + 1))
    fi
}
refused "invalid EXPOSE" 's/^EXPOSE 9090/EXPOSE metrics/'
refused "USER root" 's/^USER 10001:10001/USER root/'
refused "shell-form ENTRYPOINT" 's/^ENTRYPOINT .*/ENTRYPOINT revstream worker/'

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
