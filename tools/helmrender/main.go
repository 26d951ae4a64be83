// helmrender renders a Helm chart's templates the way `helm template` does,
// for CI on a machine without helm: Go's text/template with the sprig
// function library (what Helm uses), plus Helm's own functions (include, tpl,
// required, toYaml, fromYaml, fromYamlArray, toJson, fromJson,
// fromJsonArray, lookup) and its built-in objects (.Values, .Release,
// .Chart, .Capabilities, .Template, .Files).
//
//	helmrender [-f values.yaml]... [--name R] [--namespace NS] [--strict]
//	           [--values-out FILE] [--notes-out FILE] CHART_DIR > manifests.yaml
//
// What it follows from Helm 3 (pkg/engine, pkg/chartutil):
//   - Values: the chart's values.yaml, then each -f file coalesced over it
//     (maps merged key by key, a null deletes the chart's key), round-tripped
//     through JSON as Helm does (every number a float64).
//   - Every file under templates/ is parsed into one template set named
//     <chart>/templates/<path>, so a define in _helpers.tpl is visible to all;
//     files whose name starts with '_' and NOTES.txt produce no manifest.
//   - --strict is `helm lint --strict`: a missing map key is an error
//     (missingkey=error) instead of an empty value.
//   - env and expandenv are removed from sprig, as Helm does; lookup returns
//     an empty map, as under `helm template`.
//   - The chart's kubeVersion constraint (Chart.yaml) must admit
//     --kube-version (default v1.29.0), else the run fails, as Helm's does.
//   - Output: "---\n# Source: <chart>/templates/<path>\n" then the rendered
//     text, templates in path order; empty renders are skipped. Each rendered
//     template must parse as YAML (duplicate keys are errors), else the run
//     fails naming the template, as Helm's "YAML parse error on ...".
//
// Exit status: 0 rendered, 1 any error (printed on stderr with the template
// name and position text/template gives).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

// apiVersions is .Capabilities.APIVersions: Has() answers from a fixed list.
type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

// files is .Files: the chart's files outside templates/, by relative path.
type files map[string][]byte

func (f files) Get(name string) string { return string(f[name]) }
func (f files) GetBytes(name string) []byte {
	return f[name]
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "helmrender: "+format+"\n", a...)
	os.Exit(1)
}

// readYAML parses a YAML file into JSON-shaped values (maps, slices,
// float64, string, bool, nil), as Helm's sigs.k8s.io/yaml does.
func readYAML(file string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v interface{}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	j, err := toJSONShape(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	m, ok := j.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: not a map at the top", file)
	}
	return m, nil
}

func toJSONShape(v interface{}) (interface{}, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out interface{}
	err = json.Unmarshal(b, &out)
	return out, err
}

// coalesce merges src over dst: maps key by key, a null in src deletes the
// key, anything else replaces.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

func toYAML(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return ""
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// blockStyle drops the JSON source's flow and quoting styles, so the
// encoder writes block YAML and quotes only strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	var v interface{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		m["Error"] = err.Error()
		return m
	}
	j, err := toJSONShape(v)
	if err != nil {
		m["Error"] = err.Error()
		return m
	}
	if jm, ok := j.(map[string]interface{}); ok {
		return jm
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var v interface{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return []interface{}{err.Error()}
	}
	j, _ := toJSONShape(v)
	a, _ := j.([]interface{})
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var a []interface{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return []interface{}{err.Error()}
	}
	return a
}

type renderer struct {
	root   *template.Template
	strict bool
}

func (r *renderer) funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	// include and tpl need the template set: bound late (see render).
	f["include"] = func(string, interface{}) (string, error) { return "", nil }
	f["tpl"] = func(string, interface{}) (string, error) { return "", nil }
	return f
}

func (r *renderer) include(name string, data interface{}) (string, error) {
	var buf strings.Builder
	if err := r.root.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (r *renderer) tpl(text string, data interface{}) (string, error) {
	t, err := r.root.Clone()
	if err != nil {
		return "", err
	}
	t, err = t.New("tpl").Parse(text)
	if err != nil {
		return "", fmt.Errorf("tpl: %v", err)
	}
	var buf strings.Builder
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("tpl: %v", err)
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

func main() {
	var vfiles valueFiles
	name := flag.String("name", "revstream", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kube := flag.String("kube-version", "v1.29.0", "Kubernetes version for .Capabilities")
	strict := flag.Bool("strict", false, "missing map keys are errors (helm lint --strict)")
	valuesOut := flag.String("values-out", "", "write the coalesced values here as JSON")
	notesOut := flag.String("notes-out", "", "write the rendered NOTES.txt here")
	var apis valueFiles
	flag.Var(&vfiles, "f", "values file (repeatable, later wins)")
	flag.Var(&apis, "api-versions", "extra API version for .Capabilities.APIVersions.Has")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: helmrender [-f values.yaml]... [--strict] CHART_DIR")
	}
	chartDir := flag.Arg(0)

	chartMeta, err := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		fail("%v", err)
	}
	chartName, _ := chartMeta["name"].(string)
	if chartName == "" {
		fail("Chart.yaml: no name")
	}
	chart := map[string]interface{}{}
	for k, v := range chartMeta {
		// .Chart exposes chart.Metadata's Go field names: Name, Version, AppVersion...
		key := strings.ToUpper(k[:1]) + k[1:]
		if k == "apiVersion" {
			key = "APIVersion"
		}
		chart[key] = v
	}

	values, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		fail("%v", err)
	}
	for _, f := range vfiles {
		over, err := readYAML(f)
		if err != nil {
			fail("%v", err)
		}
		values = coalesce(values, over)
	}
	if *valuesOut != "" {
		b, _ := json.MarshalIndent(values, "", "  ")
		if err := os.WriteFile(*valuesOut, append(b, '\n'), 0o644); err != nil {
			fail("%v", err)
		}
	}

	// Every file of the chart by relative path; templates/ into the set.
	chartFiles := files{}
	var tnames []string
	tsrc := map[string]string{}
	err = filepath.WalkDir(chartDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			n := path.Join(chartName, rel)
			tnames = append(tnames, n)
			tsrc[n] = string(b)
		} else {
			chartFiles[rel] = b
		}
		return nil
	})
	if err != nil {
		fail("%v", err)
	}
	sort.Strings(tnames)

	r := &renderer{strict: *strict}
	r.root = template.New("gotpl")
	if *strict {
		r.root.Option("missingkey=error")
	} else {
		r.root.Option("missingkey=zero")
	}
	fm := r.funcs()
	fm["include"] = r.include
	fm["tpl"] = r.tpl
	r.root.Funcs(fm)
	for _, n := range tnames {
		if _, err := r.root.New(n).Parse(tsrc[n]); err != nil {
			fail("parse error: %v", err)
		}
	}

	ver := strings.TrimPrefix(*kube, "v")
	parts := strings.SplitN(ver, ".", 3)
	if len(parts) < 2 {
		fail("--kube-version %s: want vMAJOR.MINOR.PATCH", *kube)
	}
	// As Helm: the chart's kubeVersion constraint must admit the version.
	if kc, _ := chartMeta["kubeVersion"].(string); kc != "" {
		c, err := semver.NewConstraint(kc)
		if err != nil {
			fail("Chart.yaml: kubeVersion %q: %v", kc, err)
		}
		v, err := semver.NewVersion(ver)
		if err != nil {
			fail("--kube-version %s: %v", *kube, err)
		}
		if !c.Check(v) {
			fail("chart requires kubeVersion: %s which is incompatible with Kubernetes v%s", kc, ver)
		}
	}
	caps := map[string]interface{}{
		"KubeVersion": map[string]interface{}{
			"Version": "v" + ver, "GitVersion": "v" + ver, "Major": parts[0], "Minor": parts[1],
		},
		"APIVersions": append(apiVersions{"v1", "apps/v1", "policy/v1", "batch/v1"}, apis...),
	}
	release := map[string]interface{}{
		"Name": *name, "Namespace": *namespace, "Service": "Helm",
		"IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}

	var out strings.Builder
	failed := false
	for _, n := range tnames {
		base := path.Base(n)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || (isNotes && *notesOut == "") {
			continue
		}
		data := map[string]interface{}{
			"Values": values, "Release": release, "Chart": chart, "Capabilities": caps,
			"Files":    chartFiles,
			"Template": map[string]interface{}{"Name": n, "BasePath": path.Join(chartName, "templates")},
		}
		var buf strings.Builder
		if err := r.root.ExecuteTemplate(&buf, n, data); err != nil {
			fmt.Fprintf(os.Stderr, "helmrender: %v\n", err)
			failed = true
			continue
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			if err := os.WriteFile(*notesOut, []byte(text), 0o644); err != nil {
				fail("%v", err)
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		dec := yaml.NewDecoder(strings.NewReader(text))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); err != nil {
				if err.Error() != "EOF" {
					fmt.Fprintf(os.Stderr, "helmrender: YAML parse error on %s: %v\n", n, err)
					failed = true
				}
				break
			}
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.TrimRight(text, "\n"))
	}
	if failed {
		os.Exit(1)
	}
	fmt.Print(out.String())
}
