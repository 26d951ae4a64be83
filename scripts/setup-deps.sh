#!/usr/bin/env bash
# Install the Debian 12 packages revstream needs, if any is missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
#   setup-deps.sh         what building, testing and the demo need
#   setup-deps.sh --dev   also what the CI checks need: clang and its
#                         libFuzzer and sanitizer runtimes (make fuzz),
#                         clang-tidy (make tidy); for the deployment checks
#                         (make chart-check, make dockerfile-check; their npm
#                         tools come from tools/ci/install.sh): Go with the
#                         sprig and yaml.v3 libraries (tools/helmrender),
#                         yamllint, promtool (prometheus), npm, valgrind
#                         (scripts/valgrind.sh)
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang-format
      librdkafka-dev libavro-dev librocksdb-dev libcriterion-dev
      libjansson-dev libcsv-dev libsimdjson-dev libmicrohttpd-dev libcurl4-openssl-dev libpq-dev
      libjemalloc-dev postgresql chromium)
if [ "${1:-}" = "--dev" ]; then
  pkgs+=(clang clang-tidy libclang-rt-14-dev
         golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
         yamllint prometheus valgrind)
  # node may come with its own npm (not Debian's package): take Debian's
  # only when there is none.
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: missing packages; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
