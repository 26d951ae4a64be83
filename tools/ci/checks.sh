# checks.sh — sourced by the check scripts (tools/ci/chart-check.sh,
# tools/ci/dockerfile-check.sh, tests/install/test_install.sh): one line per
# check and a closing "N passed, N failed".
#   CHECK_LOG   file that holds the last check's output (set before use)
#   check NAME CMD...     CMD must succeed; on failure its output's tail is shown
#   refused NAME CMD...   CMD must fail (a broken input must be refused); the
#                         first line of its output that is not a summary is shown
#   checks_finish         prints the totals; returns 1 if any check failed
check_passed=0
check_failed=0

# expect pass|fail NAME CMD...: one check, counted.
expect() {
    local want=$1 name=$2 got=fail
    shift 2
    "$@" >"$CHECK_LOG" 2>&1 && got=pass
    if [[ $got == pass && $want == pass ]]; then
        echo "ok   $name"
    elif [[ $got == fail && $want == fail ]]; then
        echo "ok   $name: refused ($(grep -v -e 'no problem' -e '^check-[a-z]*.*problem' "$CHECK_LOG" |
            grep -m1 . | cut -c1-200))"
    else
        if [[ $want == fail ]]; then
            echo "FAIL $name: a broken input passed"
        else
            echo "FAIL $name"
            sed 's/^/     /' "$CHECK_LOG" | tail -40
        fi
        check_failed=$((check_failed + 1))
        return
    fi
    check_passed=$((check_passed + 1))
}
check() { expect pass "$@"; }
refused() { expect fail "$@"; }

checks_finish() {
    echo "$check_passed passed, $check_failed failed"
    [[ $check_failed -eq 0 ]]
}
