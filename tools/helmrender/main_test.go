// Tests of what helmrender must do as Helm does (run by
// tools/ci/chart-check.sh with go test): values coalescing, numbers as
// float64, toYaml's block output and quoting, required, include and tpl.
package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

func TestCoalesce(t *testing.T) {
	dst := map[string]interface{}{
		"a": map[string]interface{}{"x": 1.0, "y": 2.0},
		"b": "keep",
		"c": "drop",
	}
	src := map[string]interface{}{
		"a": map[string]interface{}{"y": 3.0, "z": 4.0},
		"c": nil,
	}
	got := coalesce(dst, src)
	a := got["a"].(map[string]interface{})
	if a["x"] != 1.0 || a["y"] != 3.0 || a["z"] != 4.0 {
		t.Fatalf("maps not merged key by key: %v", a)
	}
	if got["b"] != "keep" {
		t.Fatalf("untouched key changed: %v", got["b"])
	}
	if _, ok := got["c"]; ok {
		t.Fatalf("a null did not delete the chart's key")
	}
}

// Helm reads values through JSON: every number is a float64, so a large
// one prints in exponent form (the well-known 1e+06), as helm template does.
func TestNumbersAreFloat64(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "v.yaml")
	if err := os.WriteFile(f, []byte("n: 1000000\nport: 9090\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := readYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	tpl := template.Must(template.New("t").Parse("{{ .n }} {{ .port }}"))
	if err := tpl.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	if b.String() != "1e+06 9090" {
		t.Fatalf("got %q, want \"1e+06 9090\"", b.String())
	}
}

func TestToYAML(t *testing.T) {
	v := map[string]interface{}{
		"s": []interface{}{"true", "1.0", "x: y", "plain", ""},
		"m": map[string]interface{}{"n": 3.0, "b": false},
	}
	want := "m:\n  b: false\n  n: 3\ns:\n  - \"true\"\n  - \"1.0\"\n  - 'x: y'\n  - plain\n  - \"\""
	if got := toYAML(v); got != want {
		t.Fatalf("toYaml:\n%s\nwant:\n%s", got, want)
	}
	back := fromYAML(want)
	if back["s"].([]interface{})[0] != "true" || back["m"].(map[string]interface{})["n"] != 3.0 {
		t.Fatalf("fromYaml did not read it back: %v", back)
	}
}

func TestRequiredIncludeTpl(t *testing.T) {
	r := &renderer{}
	r.root = template.New("gotpl").Option("missingkey=error")
	fm := r.funcs()
	fm["include"] = r.include
	fm["tpl"] = r.tpl
	r.root.Funcs(fm)
	template.Must(r.root.New("helpers").Parse(`{{- define "name" -}}rs-{{ .Values.x }}{{- end -}}`))
	main := template.Must(r.root.New("main").Parse(
		`{{ include "name" . | upper }} {{ tpl .Values.t . }} {{ required "x needed" .Values.x }}`))
	var b strings.Builder
	data := map[string]interface{}{"Values": map[string]interface{}{"x": "a", "t": "{{ .Values.x }}!"}}
	if err := main.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if b.String() != "RS-A a! a" {
		t.Fatalf("got %q", b.String())
	}
	b.Reset()
	data["Values"].(map[string]interface{})["x"] = ""
	err := main.Execute(&b, data)
	if err == nil || !strings.Contains(err.Error(), "x needed") {
		t.Fatalf("required did not fail on an empty value: %v", err)
	}
	if _, ok := fm["env"]; ok {
		t.Fatalf("env must be removed from sprig, as Helm does")
	}
}
