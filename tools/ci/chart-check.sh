#!/usr/bin/env bash
# chart-check.sh [BUILD] — check helm/revstream without helm or a cluster
# (make chart-check; CI step "chart"). Tools: tools/ci/install.sh.
#
#   1. YAML well-formedness (yamllint, tools/ci/yamllint.yaml) of the chart's
#      plain YAML files, the example values, the alert rules and their tests;
#   2. tools/helmrender (Go text/template + sprig, Helm's own functions) is
#      built and its tests run (go test), then it renders the chart, --strict, with the default values, each
#      examples/*.yaml, and every optional object switched on; for each:
#      the coalesced values against values.schema.json (Ajv), the rendered
#      manifests well-formed (yamllint) and valid against the Kubernetes API
#      schemas and the chart's rules (tools/ci/check-chart.mjs), NOTES.txt
#      rendered, and the worker (BUILD/revstream worker --check) accepts the
#      rendered worker.properties with the container's environment;
#   3. the alert rules: promtool check rules and promtool test rules
#      (tools/ci/alerts_test.yaml);
#   4. the checks must fail on a broken chart: copies with a template syntax
#      error, a misspelt value reference, a value the schema refuses, an
#      unknown values key, a manifest the API schema refuses, a misspelt
#      field in a manifest (unknown to its type), a worker.properties key the
#      worker refuses, a rule broken
#      (service links on), and rendered YAML that does not parse; each must
#      be refused, else this script fails.
# Prints "ok"/"FAIL" per check and "N passed, N failed"; exit 1 on any FAIL.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(mkdir -p "${1:-$ROOT/build}" && cd "${1:-$ROOT/build}" && pwd)
CHART="$ROOT/helm/revstream"
OUT="$BUILD/chart-check"
CI="$ROOT/tools/ci"
CHECK_LOG="$OUT/last.log"
# shellcheck source=tools/ci/checks.sh
. "$CI/checks.sh"
rm -rf "$OUT" && mkdir -p "$OUT"

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
    [[ -s "$OUT/$name.notes.txt" ]] || { echo "NOTES.txt rendered empty"; return 1; }
    worker_check "$name"
}

# worker_check NAME: the worker itself accepts the rendered config and
# environment (revstream worker --check, the binary of BUILD).
worker_check() {
    local dir="$OUT/$1.worker"
    [[ -x "$BUILD/revstream" ]] || { echo "$BUILD/revstream is not built (make build first)"; return 1; }
    mkdir -p "$dir" && node "$CI/check-chart.mjs" worker-config "$OUT/$1.yaml" "$dir" >/dev/null || return 1
    mapfile -t envs <"$dir/env"
    env -i PATH="$PATH" "${envs[@]}" "$BUILD/revstream" worker --config "$dir/worker.properties" \
        --check >"$dir/check.out" || return 1
    grep -q "state.dir=/var/lib/revstream/state" "$dir/check.out"
}

check "yamllint chart, examples, alerts" yamllint -c "$CI/yamllint.yaml" "$CHART/Chart.yaml" \
    "$CHART/values.yaml" "$CHART"/examples/*.yaml "$CHART/files/alerts.yaml" "$CI/alerts_test.yaml"
check "values.schema.json is a draft-07 schema" node -e \
    "const A=require('$CI/node_modules/ajv');new A({strict:false}).compile(require('$CHART/values.schema.json'))"
check "build tools/helmrender (text/template + sprig)" build_renderer
check "go test tools/helmrender (Helm's semantics)" bash -c "cd '$OUT/gopath/src/revstream/helmrender' &&
    GO111MODULE=off GOPATH='$OUT/gopath:/usr/share/gocode' GOCACHE='$OUT/gocache' GOPROXY=off GOFLAGS= go test ."
[[ -x "$OUT/helmrender" ]] || { checks_finish; exit 1; }

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
check "default values" check_set "$CHART" default
for ex in "$CHART"/examples/*.yaml; do
    check "example $(basename "$ex")" check_set "$CHART" "example-$(basename "$ex" .yaml)" "$ex"
done
check "every optional object on" check_set "$CHART" all-on "$OUT/all-on-input.yaml"
check "promtool check rules" promtool check rules "$CHART/files/alerts.yaml"
check "promtool test rules" promtool test rules "$CI/alerts_test.yaml"

# Broken copies: each must be refused.
broken() { # broken NAME FILE SED-EXPR DESCRIPTION: a copy with one edit must fail
    local dir="$OUT/broken-$1"
    rm -rf "$dir" && cp -r "$CHART" "$dir" && sed -i -e "$3" "$dir/$2"
    if cmp -s "$CHART/$2" "$dir/$2"; then
        echo "FAIL $4: the edit changed nothing"
        check_failed=$((check_failed + 1))
        return
    fi
    refused "$4" check_set "$dir" "$1"
}
broken syntax templates/pdb.yaml '$d' "broken template (unclosed if)" # drops the {{- end }}
broken missing-value templates/statefulset.yaml 's/\.Values\.metrics\.port/.Values.metrics.prot/' \
    "misspelt value reference (--strict)"
broken bad-type values.yaml 's/^replicaCount: 3/replicaCount: three/' \
    "values/schema mismatch (replicaCount: three)"
broken unknown-key values.yaml '$a replicaCont: 3' "unknown values key (replicaCont)"
broken api-schema templates/statefulset.yaml \
    's/containerPort: {{ .Values.metrics.port }}/containerPort: "metrics"/' \
    "manifest the API schema refuses (containerPort: \"metrics\")"
broken unknown-field templates/statefulset.yaml \
    's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/' \
    "manifest with an unknown field (terminationGracePeriodSecond)"
broken worker-key templates/configmap.yaml 's/batch\.max\.records=/batch.max.record=/' \
    "worker.properties key the worker does not know (batch.max.record)"
broken rule templates/statefulset.yaml 's/enableServiceLinks: false/enableServiceLinks: true/' \
    "chart rule broken (enableServiceLinks: true)"
broken yaml templates/service-metrics.yaml 's/^  type: ClusterIP/ type: ClusterIP/' \
    "rendered YAML that does not parse"

checks_finish
