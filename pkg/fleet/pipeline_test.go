package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// hostile are values that would add a key, a job or a script line if they
// were pasted into YAML or sh text.
var hostile = []string{
	`a/b:x"; rm -rf /`, "x\nevil: {script: [id]}", "- id", `'; id; '`, `$(id)`, "`id`", `${HOME}`, `$CI_JOB_TOKEN`,
	": # - { } [ ] & * ! | > ' \" % @ `", "a: b", "#c", "&anchor", "*alias", "!!binary x", "|", ">", "%TAG", "@x",
	"line1\nline2", "\r\n- injected", "'", `"`, `\`, "", " ", "--context=other", "\x00nul", "ü", "---\nnext: doc",
}

// parse reads a pipeline back into plain values, and validates them
// against testdata's schema of the keys GitLab takes.
func parse(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		t.Fatalf("a second YAML document:\n%s", b)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema(t).Validate(inst); err != nil {
		t.Fatalf("not GitLab CI YAML: %v\n%s", err, b)
	}
	return v
}

func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/gitlab-ci-subset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("gitlab-ci-subset.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("gitlab-ci-subset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func targets(n int) []Target {
	out := make([]Target, n)
	for i := range out {
		out[i] = Target{Project: fmt.Sprintf("org/team-%d/clusters", i/7), Name: fmt.Sprintf("agent-%d", i)}
	}
	return out
}

// wantJob is a matrix job exactly as it must read back.
func wantJob(image string, args []string, ts []Target) map[string]any {
	m := make([]any, len(ts))
	for i, t := range ts {
		m[i] = map[string]any{"AGENT_CONTEXT": t.Context(), "AGENT_PROJECT": t.Project, "AGENT_NAME": t.Name}
	}
	return map[string]any{
		"image":          image,
		"parallel":       map[string]any{"matrix": m},
		"resource_group": "agent/$AGENT_PROJECT/$AGENT_NAME",
		"script":         []any{Script(args)},
		"artifacts":      map[string]any{"paths": []any{"result.json"}, "when": "always"},
	}
}

// TestSplitAt200: no matrix makes more than GitLab's 200 jobs; every agent
// is in exactly one job, in order, and nothing else is written.
func TestSplitAt200(t *testing.T) {
	for _, n := range []int{1, 199, 200, 201, 400, 401} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ts := targets(n)
			args := []string{"upgrade", "{agent}"}
			b, err := Pipeline{Image: DefaultImage, Args: args, Targets: ts}.YAML()
			if err != nil {
				t.Fatal(err)
			}
			got := parse(t, b)
			want := map[string]any{}
			for i := 0; i*MaxMatrix < n; i++ {
				want[fmt.Sprintf("fleet-%d", i+1)] = wantJob(DefaultImage, args, ts[i*MaxMatrix:min((i+1)*MaxMatrix, n)])
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%s", b)
			}
		})
	}
}

// TestHostileValuesStayValues: whatever the project paths, agent names,
// image and arguments hold, the YAML has the same jobs, keys and one script
// line, and each value reads back byte for byte. Targets are validated
// before they get here (TestHostileTargetsRefused); encode is tried
// without that guard.
func TestHostileValuesStayValues(t *testing.T) {
	for _, h := range hostile {
		ts := []Target{{Project: h, Name: h}, {Project: "ok/p", Name: h}}
		args := []string{"upgrade", h, "{agent}", "--values", h}
		b, err := Pipeline{Image: h, Args: args, Targets: ts}.encode()
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		var got map[string]any
		if err := yaml.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v\n%s", h, err, b)
		}
		if want := map[string]any{"fleet-1": wantJob(h, args, ts)}; !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got\n%s", h, b)
		}
	}
	// The no-op job's message too.
	for _, h := range hostile {
		b, err := Pipeline{Image: "img", Empty: h}.YAML()
		if err != nil {
			t.Fatal(err)
		}
		got := parse(t, b)
		want := map[string]any{"fleet-none": map[string]any{"image": "img", "script": []any{"echo " + ShellQuote(h)}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got\n%s", h, b)
		}
	}
}

// TestHostileTargetsRefused: a project path or agent name GitLab would not
// give never reaches a pipeline, from --agent or from GitLab.
func TestHostileTargetsRefused(t *testing.T) {
	for _, h := range hostile {
		if _, err := ParseTarget(h); err == nil {
			t.Errorf("ParseTarget(%q) took it", h)
		}
		if _, err := ParseTarget("ok/p:" + h); err == nil {
			t.Errorf("ParseTarget(ok/p:%q) took it", h)
		}
		if _, err := (Pipeline{Image: "i", Targets: []Target{{Project: h, Name: "a"}}}).YAML(); err == nil {
			t.Errorf("YAML took project %q", h)
		}
		if _, err := (Pipeline{Image: "i", Targets: []Target{{Project: "ok/p", Name: h}}}).YAML(); err == nil {
			t.Errorf("YAML took agent %q", h)
		}
	}
	long := Target{Project: strings.Repeat("p", 250), Name: "a"}
	if err := long.Validate(); err == nil || !strings.Contains(err.Error(), "255") {
		t.Errorf("a resource group past 255 characters: %v", err)
	}
	for _, ok := range []string{"infra/agents:prod-eu", "a/b.c/d_e-f:x", "g/p:a1"} {
		if _, err := ParseTarget(ok); err != nil {
			t.Errorf("ParseTarget(%q): %v", ok, err)
		}
	}
}

// TestResourceGroupKeys: the key GitLab makes from the template for a valid
// target matches its rule, so the lock is kept (a key it refuses leaves the
// job without one, silently); two agents never share one.
func TestResourceGroupKeys(t *testing.T) {
	// Gitlab::Regex.environment_name_regex.
	rule := regexp.MustCompile(`^[a-zA-Z0-9_${}. -]([a-zA-Z0-9_/${}. -]*[a-zA-Z0-9_${}. -])?$`)
	seen := map[string]Target{}
	for _, tg := range append(targets(30), Target{"a/b", "c"}, Target{"a", "b-c"}, Target{"a.b/c", "d"}) {
		k := strings.NewReplacer("$AGENT_PROJECT", tg.Project, "$AGENT_NAME", tg.Name).Replace(resourceGroupTemplate)
		if k != tg.ResourceGroup() || !rule.MatchString(k) {
			t.Errorf("%v: key %q", tg, k)
		}
		if o, dup := seen[k]; dup {
			t.Errorf("%v and %v share %q", o, tg, k)
		}
		seen[k] = tg
	}
}

// TestScriptRunsArgsVerbatim runs the script line in sh, as a runner does,
// with a kubectl that records its arguments: each ARG arrives as one
// argument, unchanged, the placeholders as the job's variables, nothing
// runs that ARGS hold.
func TestScriptRunsArgsVerbatim(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	bin := t.TempDir()
	stub := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\000' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, h := range hostile {
		if !strings.ContainsRune(h, 0) { // no argv can hold NUL
			args = append(args, h)
		}
	}
	args = append(args, "{agent}", "{project}", "x{agent}")
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "set -e\n"+Script(args)+"\n")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "AGENT_CONTEXT=g/p:a", "AGENT_NAME=a", "AGENT_PROJECT=g/p", "HOME=/nonexistent"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	want := append(append([]string{"gitlab-agent"}, args[:len(args)-3]...), "a", "g/p", "x{agent}", "--context", "g/p:a", "-o", "json")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("argv\n got %q\nwant %q", got, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the script made files: %v", entries)
	}
}

// TestNoToken: a pipeline names no credential; the only variables it
// refers to are the matrix's and the registry's.
func TestNoToken(t *testing.T) {
	b, err := Pipeline{Image: DefaultImage, Args: []string{"upgrade", "{agent}", "--timeout", "10m"}, Targets: targets(3)}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, bad := range []string{"TOKEN", "token", "glpat", "PASSWORD", "SECRET"} {
		if strings.Contains(s, bad) {
			t.Errorf("the pipeline holds %q:\n%s", bad, s)
		}
	}
	for _, ref := range regexp.MustCompile(`\$\{?[A-Za-z_]+`).FindAllString(s, -1) {
		switch strings.TrimPrefix(ref, "${") {
		case "$AGENT_CONTEXT", "$AGENT_NAME", "$AGENT_PROJECT", "$CI_REGISTRY_IMAGE":
		default:
			t.Errorf("the pipeline refers to %s:\n%s", ref, s)
		}
	}
}
