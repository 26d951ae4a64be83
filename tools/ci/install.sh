#!/usr/bin/env bash
# install.sh — the tools the deployment checks need (make chart-check,
# make dockerfile-check), from Debian's packages and the npm registry only:
#   Debian (scripts/setup-deps.sh --dev): golang-go and
#     golang-github-masterminds-sprig-dev + golang-gopkg-yaml.v3-dev (the
#     template libraries Helm uses, for tools/helmrender), yamllint,
#     prometheus (promtool), npm when node has none;
#   npm (tools/ci/package.json, exact versions in package-lock.json, `npm
#     ci`): ajv + ajv-formats, yaml, kubernetes-models (+ the KEDA and
#     prometheus-operator models), typescript (unknown-field check),
#     dockerfile-utils.
# Idempotent: npm ci runs again only when package-lock.json is newer than
# the installed tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup-deps.sh --dev
lock=tools/ci/package-lock.json
stamp=tools/ci/node_modules/.package-lock.json
if [[ ! -f "$stamp" || "$lock" -nt "$stamp" ]]; then
    echo "install: npm ci in tools/ci" >&2
    npm ci --prefix tools/ci --no-audit --no-fund --loglevel=error
fi
