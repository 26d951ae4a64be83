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
CHECK_LOG="$WORK/log"
# shellcheck source=tools/ci/checks.sh
. "$ROOT/tools/ci/checks.sh"

check "Dockerfile" node "$CHECK" "$ROOT/Dockerfile"

broken() { # broken NAME SED-EXPR DESCRIPTION: a copy with one edit must fail
    sed -e "$2" "$ROOT/Dockerfile" >"$WORK/Dockerfile.$1"
    if cmp -s "$ROOT/Dockerfile" "$WORK/Dockerfile.$1"; then
        echo "FAIL $3: the edit changed nothing"
        check_failed=$((check_failed + 1))
        return
    fi
    refused "$3" node "$CHECK" "$WORK/Dockerfile.$1"
}
broken expose 's/^EXPOSE 9090/EXPOSE metrics/' "invalid EXPOSE"
broken root 's/^USER 10001:10001/USER root/' "USER root"
broken entrypoint 's/^ENTRYPOINT .*/ENTRYPOINT revstream worker/' "shell-form ENTRYPOINT"
checks_finish
