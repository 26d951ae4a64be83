#!/usr/bin/env bash
# chart-check.sh [BUILD] — check helm/revstream without helm or a cluster
# (make chart-check; CI step "chart"). Tools: tools/ci/install.sh.
#
#   1. YAML well-formedness (yamllint, tools/ci/yamllint.yaml) of the chart's
#      plain YAML files, the example values, the alert rules and their tests;
#   2. tools/helmrender (Go text/template + sprig, Helm's own functions) is
#      built and renders the chart, --strict, with the default values, each
#      examples/*.yaml, and every optional object switched on; for each:
#      the coalesced values against values.schema.json (Ajv), the rendered
#      manifests well-formed (yamllint) and valid against the Kubernetes API
#      schemas and the chart's rules (tools/ci/check-chart.mjs), NOTES.txt
#      rendered;
#   3. the alert rules: promtool check rules and promtool test rules
#      (tools/ci/alerts_test.yaml);
#   4. the checks must fail on a broken chart: copies with a template syntax
#      error, a misspelt value reference, a value the schema refuses, an
#      unknown values key, a manifest the API schema refuses, a misspelt
#      field in a manifest (unknown to its type), a rule broken
#      (service links on), and rendered YAML that does not parse; each must
#      be refused, else this script fails.
# Prints "ok"/"FAIL" per check and "N passed, N failed"; exit 1 on any FAIL.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(mkdir -p "${1:-$ROOT/build}" && cd "${1:-$ROOT/build}" && pwd)
CHART="$ROOT/helm/revstream"
OUT="$BUILD/chart-check"
CI="$ROOT/tools/ci"
passed=0
failed=0
rm -rf "$OUT" && mkdir -p "$OUT"

run() { # run NAME CMD... — a check that must pass
    local name=$1
    shift
    if "$@" >"$OUT/last.log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/     /' "$OUT/last.log" | tail -40
        failed=$((failed + 1))
    fi
}

refused() { # refused NAME CMD... — a check of a broken chart that must fail
    local name=$1
    shift
    if "$@" >"$OUT/last.log" 2>&1; then
        echo "FAIL $name: a broken chart passed the checks"
        failed=$((failed + 1))
    else
        echo "ok   $name: refused ($(grep -v -e 'no problem' -e '^check-chart .*problem' "$OUT/last.log" | grep -m1 . | cut -c1-200))"
        passed=$((passed + 1))
    fi
}

# The renderer, built offline in GOPATH mode against Debian's Go libraries.
build_renderer() {
    local gp="$OUT/gopath"
    mkdir -p "$gp/src/revstream" && cp -r "$ROOT/tools/helmrender" "$gp/src/revstream/" &&
        (cd "$gp/src/revstream/helmrender" &&
            GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOCACHE="$OUT/gocache" GOPROXY=off \
                GOFLAGS= go build -o "$OUT/helmrender" .)
}

# check_set CHART NAME [VALUES...]: render, then every check of the result.
check_set() {
    local chart=$1 name=$2
    shift 2
    local fargs=() v
    for v in "$@"; do fargs+=(-f "$v"); done
    "$OUT/helmrender" --strict "${fargs[@]}" --values-out "$OUT/$name.values.json" \
        --notes-out "$OUT/$name.notes.txt" "$chart" >"$OUT/$name.yaml" || return 1
    node "$CI/check-chart.mjs" values "$chart/values.schema.json" "$OUT/$name.values.json" || return 1
    yamllint -c "$CI/yamllint.yaml" "$OUT/$name.yaml" || return 1
    node "$CI/check-chart.mjs" manifests "$OUT/$name.yaml" || return 1
    [[ -s "$OUT/$name.notes.txt" ]]
}

run "yamllint chart, examples, alerts" yamllint -c "$CI/yamllint.yaml" "$CHART/Chart.yaml" \
    "$CHART/values.yaml" "$CHART"/examples/*.yaml "$CHART/files/alerts.yaml" "$CI/alerts_test.yaml"
run "values.schema.json is a draft-07 schema" node -e \
    "const A=require('$CI/node_modules/ajv');new A({strict:false}).compile(require('$CHART/values.schema.json'))"
run "build tools/helmrender (text/template + sprig)" build_renderer
[[ -x "$OUT/helmrender" ]] || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }

cat >"$OUT/all-on-input.yaml" <<'EOV'
metrics:
  serviceMonitor: {enabled: true}
  prometheusRule: {enabled: true}
keda: {enabled: true}
kafka:
  securityProtocol: SASL_SSL
  sasl: {username: revstream}
  tls: {caSecret: kafka-ca}
schemaRegistry: {url: "https://sr.example.com", username: revstream, passwordKey: sr-password}
existingSecret: revstream-credentials
worker: {policy: "policy.cancellation = forfeit\n", extraConfig: {exit.when.idle: false}}
extraEnv: [{name: TZ, value: UTC}]
EOV
run "default values" check_set "$CHART" default
for ex in "$CHART"/examples/*.yaml; do
    run "example $(basename "$ex")" check_set "$CHART" "example-$(basename "$ex" .yaml)" "$ex"
done
run "every optional object on" check_set "$CHART" all-on "$OUT/all-on-input.yaml"
run "promtool check rules" promtool check rules "$CHART/files/alerts.yaml"
run "promtool test rules" promtool test rules "$CI/alerts_test.yaml"

# Broken copies: each must be refused.
broken() { # broken NAME FILE SED-EXPR: a copy of the chart with one edit
    local dir="$OUT/broken-$1"
    rm -rf "$dir" && cp -r "$CHART" "$dir" && sed -i -e "$3" "$dir/$2" &&
        ! cmp -s "$CHART/$2" "$dir/$2" || { echo "broken $1: the edit changed nothing"; return 1; }
    echo "$dir"
}
b=$(broken syntax templates/pdb.yaml '$d') && # drops the closing {{- end }}
    refused "broken template (unclosed if)" check_set "$b" syntax
b=$(broken missing-value templates/statefulset.yaml 's/\.Values\.metrics\.port/.Values.metrics.prot/') &&
    refused "misspelt value reference (--strict)" check_set "$b" missing-value
b=$(broken bad-type values.yaml 's/^replicaCount: 3/replicaCount: three/') &&
    refused "values/schema mismatch (replicaCount: three)" check_set "$b" bad-type
b=$(broken unknown-key values.yaml '$a replicaCont: 3') &&
    refused "unknown values key (replicaCont)" check_set "$b" unknown-key
b=$(broken api-schema templates/statefulset.yaml 's/containerPort: {{ .Values.metrics.port }}/containerPort: "metrics"/') &&
    refused "manifest the API schema refuses (containerPort: \"metrics\")" check_set "$b" api-schema
b=$(broken unknown-field templates/statefulset.yaml 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/') &&
    refused "manifest with an unknown field (terminationGracePeriodSecond)" check_set "$b" unknown-field
b=$(broken rule templates/statefulset.yaml 's/enableServiceLinks: false/enableServiceLinks: true/') &&
    refused "chart rule broken (enableServiceLinks: true)" check_set "$b" rule
b=$(broken yaml templates/service-metrics.yaml 's/^  type: ClusterIP/ type: ClusterIP/') &&
    refused "rendered YAML that does not parse" check_set "$b" yaml

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
