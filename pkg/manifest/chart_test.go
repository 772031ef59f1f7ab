package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"

	"sigs.k8s.io/yaml"
)

// chartCase is testdata/chart/<case>/case.yaml: a release name and namespace
// whose values.yaml we render and compare with `helm template` (helm.yaml).
type chartCase struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace"`
	HelmSet   []string `json:"helmSet"`
}

// chartCases are testdata/chart/<chart version>/<case>.
func chartCases(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/chart/*/*/case.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no chart cases found: %v", err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

func renderCase(t *testing.T, dir string) (chartCase, Output) {
	t.Helper()
	var c chartCase
	readYAML(t, filepath.Join(dir, "case.yaml"), &c)
	data, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := ParseValuesFile("values.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadChart(filepath.Base(filepath.Dir(dir)), src)
	if err != nil {
		t.Fatal(err)
	}
	// A receptive agent's private-api-jwt is random unless kept: the
	// golden files pin a kept one.
	out, err := Render(Input{Name: c.Name, Namespace: c.Namespace, Values: v, PrivateAPIJWT: keptJWT})
	if err != nil {
		t.Fatal(err)
	}
	return c, out
}

// keptJWT stands for a private-api-jwt read back from a live Secret.
const keptJWT = "a2VwdC1mcm9tLXRoZS1saXZlLXNlY3JldA=="

// TestRenderGolden pins our output byte for byte, so any change shows in review.
func TestRenderGolden(t *testing.T) {
	for _, dir := range chartCases(t) {
		t.Run(caseName(dir), func(t *testing.T) {
			_, out := renderCase(t, dir)
			var buf bytes.Buffer
			if err := WriteYAML(&buf, out.Objects); err != nil {
				t.Fatal(err)
			}
			golden.Compare(t, filepath.Join(dir, "render.golden.yaml"), buf.Bytes())
		})
	}
}

// TestRenderMatchesChart compares our objects with what `helm template` of
// the real chart made for the same inputs (helm.yaml, made by
// testdata/chart/helm-template.sh), field by field, allowing exactly the
// documented differences.
func TestRenderMatchesChart(t *testing.T) {
	for _, dir := range chartCases(t) {
		t.Run(caseName(dir), func(t *testing.T) {
			c, out := renderCase(t, dir)
			ours := map[string]any{}
			for i, o := range out.Objects {
				o := normalize(t, o)
				if i == 0 {
					// Our one addition: the Namespace, first.
					want := map[string]any{"apiVersion": "v1", "kind": "Namespace"}
					if o["kind"] != want["kind"] || o["metadata"].(map[string]any)["name"] != c.Namespace {
						t.Errorf("first object is %v %v, want Namespace %s", o["kind"], o["metadata"], c.Namespace)
					}
					continue
				}
				maskRandom(o)
				ours[objectKey(o)] = o
			}
			helm := map[string]any{}
			raw, err := os.ReadFile(filepath.Join(dir, "helm.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range strings.Split(string(raw), "\n---") {
				var o map[string]any
				if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
					t.Fatalf("helm.yaml: %v", err)
				}
				if o == nil {
					continue
				}
				o = normalize(t, o)
				asInstalled(o, c.Namespace)
				maskRandom(o)
				helm[objectKey(o)] = o
			}
			for _, k := range sortedKeys(helm) {
				if _, ok := ours[k]; !ok {
					t.Errorf("the chart makes %s; we do not", k)
				}
			}
			for _, k := range sortedKeys(ours) {
				h, ok := helm[k]
				if !ok {
					t.Errorf("we make %s; the chart does not", k)
					continue
				}
				for _, d := range diffValues(k, h, ours[k]) {
					t.Error(d)
				}
			}
		})
	}
}

func caseName(dir string) string {
	return filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
}

// maskRandom hides what the chart makes at random (a receptive agent's
// private-api-jwt, from randAscii): the one value that cannot match. It must
// be there on both sides.
func maskRandom(o map[string]any) {
	if o["kind"] != "Secret" {
		return
	}
	if data, ok := o["data"].(map[string]any); ok {
		if _, ok := data[PrivateAPIJWTKey]; ok {
			data[PrivateAPIJWTKey] = "<random>"
		}
	}
}

// asInstalled applies the documented differences to a chart object: what a
// chart install puts in the cluster, labelled as we label it.
func asInstalled(o map[string]any, namespace string) {
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}
	meta := o["metadata"].(map[string]any)
	if !clusterScoped[o["kind"].(string)] {
		if _, ok := meta["namespace"]; !ok {
			meta["namespace"] = namespace
		}
	}
	relabel := func(m map[string]any) {
		labels, _ := m["labels"].(map[string]any)
		delete(labels, "helm.sh/chart")
		if labels["app.kubernetes.io/managed-by"] == "Helm" {
			labels["app.kubernetes.io/managed-by"] = ManagedBy
		}
	}
	relabel(meta)
	if spec, ok := o["spec"].(map[string]any); ok {
		if tmpl, ok := spec["template"].(map[string]any); ok {
			relabel(tmpl["metadata"].(map[string]any))
			// 2.15.0's telemetry names how agentk was installed.
			for _, c := range tmpl["spec"].(map[string]any)["containers"].([]any) {
				env, _ := c.(map[string]any)["env"].([]any)
				for _, e := range env {
					if e := e.(map[string]any); e["name"] == "GITLAB_AGENT_TELEMETRY_installation_method" && e["value"] == "helm-chart" {
						e["value"] = TelemetryInstallationMethod
					}
				}
			}
		}
	}
}

// normalize round-trips an object through JSON so that numbers compare as
// numbers whatever produced them.
func normalize(t *testing.T, o map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func objectKey(o map[string]any) string {
	meta := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v %v/%v", o["apiVersion"], o["kind"], meta["namespace"], meta["name"])
}

// diffValues lists where want and got differ, by path.
func diffValues(path string, want, got any) []string {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := slices.Concat(slices.Collect(maps.Keys(wm)), slices.Collect(maps.Keys(gm)))
		slices.Sort(keys)
		var diffs []string
		for _, k := range slices.Compact(keys) {
			w, inW := wm[k]
			g, inG := gm[k]
			switch {
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: chart has no such field, we have %v", path, k, g))
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: chart has %v, we have no such field", path, k, w))
			default:
				diffs = append(diffs, diffValues(path+"."+k, w, g)...)
			}
		}
		return diffs
	}
	wl, wok := want.([]any)
	gl, gok := got.([]any)
	if wok && gok && len(wl) == len(gl) {
		var diffs []string
		for i := range wl {
			diffs = append(diffs, diffValues(fmt.Sprintf("%s[%d]", path, i), wl[i], gl[i])...)
		}
		return diffs
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: chart has %v, we have %v", path, want, got)}
	}
	return nil
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestSelector: the selector that finds an install's objects is the chart's
// two selector labels, whichever of the chart and the plugin installed it.
func TestSelector(t *testing.T) {
	if got := Selector(Input{Name: "prod"}); got != "app.kubernetes.io/instance=prod,app.kubernetes.io/name=gitlab-agent" {
		t.Errorf("Selector = %q", got)
	}
	if got := InstanceOf(map[string]string{"app.kubernetes.io/instance": "prod", "app.kubernetes.io/name": "gitlab-agent"}); got != "prod" {
		t.Errorf("InstanceOf = %q", got)
	}
	if AllAgents != "app.kubernetes.io/name=gitlab-agent" {
		t.Errorf("AllAgents = %q", AllAgents)
	}
}

// TestOwns: the selector also finds the same agent installed in another
// namespace; Owns keeps this install's objects, as the chart names them.
func TestOwns(t *testing.T) {
	in := Input{Name: "prod", Namespace: "ns-a"}
	for _, c := range []struct {
		namespace, name string
		want            bool
	}{
		{"ns-a", "prod-gitlab-agent-v2", true},
		{"ns-b", "prod-gitlab-agent-v2", false},
		{"", "ns-a", true}, // its Namespace
		{"", "ns-b", false},
		{"", "ns-a:prod-gitlab-agent-cluster-admin", true},
		{"", "ns-b:prod-gitlab-agent-cluster-admin", false},
		{"", "ns-ab:prod-gitlab-agent-cluster-admin", false},
		{"", "ns-a-other", false},
	} {
		if got := in.Owns(c.namespace, c.name); got != c.want {
			t.Errorf("Owns(%q, %q) = %v, want %v", c.namespace, c.name, got, c.want)
		}
	}
}
