#!/usr/bin/env bash
# tidy.sh [BUILD [FILE...]] — clang-tidy with the checked-in .clang-tidy over
# the project's C sources (workers/, schemas/, state/, metrics/; not tests/ nor
# bench/, which are harnesses), using BUILD/compile_commands.json (default
# build/, which CMake writes at configure time). Any finding is an error
# (WarningsAsErrors in .clang-tidy): the exit status is 1 and each finding is
# printed as FILE:LINE:COL: error: MESSAGE [CHECK]. JOBS sets the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
JOBS=${JOBS:-$(nproc)}
TIDY=${CLANG_TIDY:-clang-tidy}

if [[ ! -f "$BUILD/compile_commands.json" ]]; then
    echo "tidy: $BUILD/compile_commands.json is missing (configure $BUILD with CMake first)" >&2
    exit 2
fi
if [[ $# -gt 0 ]]; then
    files=("$@")
else
    mapfile -t files < <(git ls-files 'workers/*.c' 'schemas/*.c' 'state/*.c' 'metrics/*.c')
fi

out=$(mktemp -d /tmp/revstream-tidy.XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "tidy: $("$TIDY" --version | grep -o 'version [0-9.]*'), ${#files[@]} files, $JOBS jobs" >&2
# One log per file, so parallel runs do not interleave their lines.
printf '%s\n' "${files[@]}" |
    xargs -P "$JOBS" -I{} sh -c '
        log="$2/$(printf %s "$3" | tr / _).log"
        "$0" -p "$1" --quiet "$3" >"$log" 2>&1 || echo "$3" >>"$2/failed"' \
        "$TIDY" "$BUILD" "$out" {}
failed=0
for f in "${files[@]}"; do
    log="$out/$(printf %s "$f" | tr / _).log"
    # Drop clang-tidy's chatter ("N warnings generated.", "N warnings treated as errors").
    grep -vE '^[0-9]+ warnings? (generated|treated as errors?)\.$' "$log" || true
done
if [[ -s "$out/failed" ]]; then
    echo "tidy: findings in $(sort "$out/failed" | tr '\n' ' ')" >&2
    exit 1
fi
echo "tidy: no findings" >&2
