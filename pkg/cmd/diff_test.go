package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// diffKubeconfig's context puts objects without a namespace in "team".
const diffKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: x}
contexts:
- name: team
  context: {cluster: c, user: u, namespace: team}
current-context: team
`

// newDiffCluster is an in-memory cluster with the Namespace team, the
// kubeconfig's; the user's cache (where the mask key lives) is the test's.
func newDiffCluster(t *testing.T) *fake.Cluster {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(diffKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv(diff.ExternalDiffEnv, "")
	c := fake.New()
	live(t, c, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
	return c
}

// live applies YAML documents to c as the plugin's field manager would.
func live(t *testing.T, c *fake.Cluster, docs ...string) {
	t.Helper()
	for _, d := range docs {
		ms, err := kube.Decode("live", []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		targets, err := c.MapAll(ms, "team")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyAll(context.Background(), targets, kube.FieldManager); err != nil {
			t.Fatal(err)
		}
	}
}

// runDiff runs diff in-process against c, stdin as given.
func runDiff(t *testing.T, c *fake.Cluster, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(fakeFactory{cluster: c}, append([]string{"diff"}, args...), genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDiffFlagErrors: a bad flag or argument exits 2 with one line, before
// any file is read (a file that does not exist is not the error) and before
// anything is asked of the cluster.
func TestDiffFlagErrors(t *testing.T) {
	c := newDiffCluster(t)
	calls := len(c.Calls())
	f := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "nothing to compare"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"a", "b"}, "at most one agent NAME"},
		{[]string{"-f", f, "--unified", "-1"}, "--unified must be 0 or more"},
		{[]string{"prod", "--unified", "-1"}, "--unified must be 0 or more"},
		{[]string{"-f", f, "--concurrency", "0"}, "--concurrency 1 or more"},
		{[]string{"-f", f, "--prune"}, "needs -l SELECTOR"},
		{[]string{"-f", f, "-o", "table"}, "table"},
		{[]string{"-f", f, "--ignore-field", "nocolon"}, "nocolon"},
		{[]string{"prod", "--set", "replica=3", "--unified", "-1"}, "--unified must be 0 or more"},
		// The files are read after the flags are checked, before the
		// cluster is asked.
		{[]string{"-f", f}, "missing.yaml"},
		{[]string{"-f", f, "--ignore-file", f}, "missing.yaml"},
		{[]string{"prod", "--values", f}, "missing.yaml"},
	} {
		code, out, errOut := runDiff(t, c, "", tt.args...)
		lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
		if code != 2 || out != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.want) {
			t.Errorf("diff %v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tt.args, code, out, errOut, tt.want)
		}
	}
	if got := c.Calls()[calls:]; len(got) != 0 {
		t.Errorf("the cluster was asked %v before the flags were found wrong", got)
	}
}

// TestDiffExitCodes: 0 when the apply would change nothing, 1 when it
// would, 2 when an object cannot be compared.
func TestDiffExitCodes(t *testing.T) {
	c := newDiffCluster(t)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: '1'}\n"
	live(t, c, cm)
	same := writeFile(t, cm)
	if code, out, errOut := runDiff(t, c, "", "-f", same); code != 0 || out != "" || errOut != "" {
		t.Errorf("the same: exit %d, %q, %q", code, out, errOut)
	}
	// From stdin, into the kubeconfig's namespace.
	if code, out, errOut := runDiff(t, c, strings.Replace(cm, "'1'", "'2'", 1), "-f", "-"); code != 1 || !strings.Contains(out, "v1/ConfigMap/team/web") {
		t.Errorf("different: exit %d, %q, %q", code, out, errOut)
	}
	// A kind the cluster does not have, and an object the user may not
	// patch: 2, and what could be compared is still printed.
	c.MayPatch = func(gvr schema.GroupVersionResource, _, name string) (bool, string) {
		return name != "locked", "configmaps \"locked\" is forbidden"
	}
	mixed := writeFile(t, strings.Replace(cm, "'1'", "'2'", 1)+
		"---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"+
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: locked}\n")
	code, out, errOut := runDiff(t, c, "", "-f", mixed)
	if code != 2 || !strings.Contains(out, "v1/ConfigMap/team/web") ||
		!strings.Contains(errOut, "the cluster has no kind Widget") || !strings.Contains(errOut, `forbidden`) ||
		!strings.Contains(errOut, "error: 2 of 3 objects could not be compared") {
		t.Errorf("objects refused: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// -n makes another namespace an error.
	ns := writeFile(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: team}\n")
	if code, _, errOut := runDiff(t, c, "", "-f", ns, "-n", "other"); code != 2 || !strings.Contains(errOut, `does not match -n "other"`) {
		t.Errorf("-n other: exit %d, %q", code, errOut)
	}
	// A cluster that does not answer is one error.
	c.Fail(fake.Reachable, c.Count(fake.Reachable)+1, errBoom)
	if code, out, errOut := runDiff(t, c, "", "-f", same); code != 2 || out != "" || errOut != "error: boom\n" {
		t.Errorf("unreachable: exit %d, %q, %q", code, out, errOut)
	}
}

var errBoom = errorString("boom")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestDiffOutputs: each -o prints the change; json and yaml are one
// document.
func TestDiffOutputs(t *testing.T) {
	c := newDiffCluster(t)
	live(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: '1', b: keep}\n")
	f := writeFile(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: '2', b: keep}\n"+
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n")

	code, out, _ := runDiff(t, c, "", "-f", f)
	if code != 1 || !strings.Contains(out, "v1/ConfigMap/team/web") || !strings.Contains(out, "-  a: \"1\"") || !strings.Contains(out, "+  a: \"2\"") {
		t.Errorf("unified: exit %d\n%s", code, out)
	}
	if code, out0, _ := runDiff(t, c, "", "-f", f, "-U", "0"); code != 1 || strings.Contains(out0, "b: keep") || !strings.Contains(out, "b: keep") {
		t.Errorf("-U 0 still shows context, or -U 3 shows none: exit %d\n%s", code, out0)
	}
	code, out, _ = runDiff(t, c, "", "-f", f, "-o", "summary")
	if code != 1 || !strings.Contains(out, "v1/ConfigMap/team/web") || !strings.Contains(out, "v1/ConfigMap/team/new") || !strings.Contains(out, "changed") || !strings.Contains(out, "created") {
		t.Errorf("summary: exit %d\n%s", code, out)
	}
	for _, format := range []string{"json", "yaml"} {
		code, out, _ := runDiff(t, c, "", "-f", f, "-o", format)
		var doc struct {
			Differs bool           `json:"differs"`
			Summary map[string]int `json:"summary"`
			Objects []struct {
				Name         string   `json:"name"`
				Action       string   `json:"action"`
				ChangedPaths []string `json:"changedPaths"`
			} `json:"objects"`
		}
		if err := yaml.Unmarshal([]byte(out), &doc); err != nil || code != 1 {
			t.Fatalf("-o %s: exit %d, %v\n%s", format, code, err, out)
		}
		actions := map[string]string{}
		for _, o := range doc.Objects {
			actions[o.Name] = o.Action
			if o.Name == "web" && !slices.Equal(o.ChangedPaths, []string{".data.a"}) {
				t.Errorf("-o %s: web changed at %v", format, o.ChangedPaths)
			}
		}
		if !doc.Differs || doc.Summary["changed"] != 1 || doc.Summary["created"] != 1 || actions["web"] != "changed" || actions["new"] != "created" {
			t.Errorf("-o %s: %+v", format, doc)
		}
	}
}

// TestDiffMasksSecrets: a Secret's values never print unless
// --show-secrets; which key changed still shows.
func TestDiffMasksSecrets(t *testing.T) {
	c := newDiffCluster(t)
	enc := base64.StdEncoding.EncodeToString
	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {user: " + enc([]byte("admin")) + ", password: %s}\n"
	live(t, c, strings.Replace(secret, "%s", enc([]byte("old-hunter2")), 1))
	f := writeFile(t, strings.Replace(secret, "%s", enc([]byte("new-hunter2")), 1))
	values := []string{"hunter2", enc([]byte("old-hunter2")), enc([]byte("new-hunter2")), enc([]byte("admin"))}
	for _, format := range []string{"unified", "summary", "json", "yaml"} {
		code, out, errOut := runDiff(t, c, "", "-f", f, "-o", format)
		for _, v := range values {
			if strings.Contains(out+errOut, v) {
				t.Errorf("-o %s printed a Secret value %q:\n%s%s", format, v, out, errOut)
			}
		}
		if code != 1 || (format == "json" && !strings.Contains(out, ".data.password")) {
			t.Errorf("-o %s: exit %d\n%s", format, code, out)
		}
	}
	code, out, _ := runDiff(t, c, "", "-f", f, "--show-secrets")
	if code != 1 || !strings.Contains(out, enc([]byte("old-hunter2"))) || !strings.Contains(out, enc([]byte("new-hunter2"))) {
		t.Errorf("--show-secrets: exit %d\n%s", code, out)
	}
}

// TestDiffPrune: --prune -l lists the live objects of the set that the
// manifests no longer hold; with nothing to prune, nothing differs.
func TestDiffPrune(t *testing.T) {
	c := newDiffCluster(t)
	web := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, labels: {app: web}}\n"
	live(t, c, web,
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old, labels: {app: web}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, labels: {app: other}}\n")
	f := writeFile(t, web)
	code, out, errOut := runDiff(t, c, "", "-f", f, "--prune", "-l", "app=web", "-o", "json")
	var doc diff.Document
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 {
		t.Fatalf("prune: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	actions := map[string]diff.Action{}
	for _, o := range doc.Objects {
		actions[o.Name] = o.Action
	}
	if want := map[string]diff.Action{"web": diff.Unchanged, "old": diff.Pruned}; !mapsEqual(actions, want) {
		t.Errorf("prune: %v, want %v", actions, want)
	}
	if code, out, _ := runDiff(t, c, "", "-f", f, "--prune", "-l", "app=nothing"); code != 0 || out != "" {
		t.Errorf("nothing to prune: exit %d, %q", code, out)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestDiffAgentAfterInstall: diff NAME renders the agent as it runs; right
// after an install nothing differs, other values do, and --prune finds
// what the render no longer has.
func TestDiffAgentAfterInstall(t *testing.T) {
	w := newInProcess(t)
	if code, _, errOut := w.run(t, "install", "prod", "--no-config"); code != 0 {
		t.Fatalf("install: %s", errOut)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	dryRuns := w.cluster.Count(fake.DryRun)
	code, out, errOut := w.runBare(t, "diff", "prod")
	if code != 0 || out != "" {
		t.Errorf("as installed: exit %d\n%s%s", code, out, errOut)
	}
	if n := w.cluster.Count(fake.DryRun); n != dryRuns {
		t.Errorf("as installed: %d dry runs; the plugin's own fields already hold every value", n-dryRuns)
	}

	code, out, errOut = w.runBare(t, "diff", "prod", "--replicas", "3", "-o", "json")
	var doc diff.Document
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 {
		t.Fatalf("--replicas 3: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	for _, o := range doc.Objects {
		want := diff.Unchanged
		if o.Kind == "Deployment" {
			want = diff.Changed
			if !slices.Contains(o.ChangedPaths, ".spec.replicas") {
				t.Errorf("the Deployment changed at %v", o.ChangedPaths)
			}
		}
		if o.Action != want || o.Ref.Namespace != "gitlab-agent-prod" && o.Ref.Namespace != "" {
			t.Errorf("--replicas 3: %s %s", o.Ref, o.Action)
		}
	}

	// An object of the install that the render no longer has.
	extra := w.cluster.Get(kube.Ref{APIVersion: "v1", Kind: "ServiceAccount", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent"})
	if extra == nil {
		t.Fatalf("no ServiceAccount to copy among %v", w.cluster.Objects())
	}
	extra.SetName("prod-gitlab-agent-old")
	w.cluster.Put(extra)
	code, out, errOut = w.runBare(t, "diff", "prod", "--prune", "-o", "summary")
	if code != 1 || !strings.Contains(out, "pruned") || !strings.Contains(out, "v1/ServiceAccount/gitlab-agent-prod/prod-gitlab-agent-old") {
		t.Errorf("--prune: exit %d\n%s%s", code, out, errOut)
	}
}
