package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// applyAs server-side applies manifests as the plugin's field manager would
// (an install), failing the test on error.
func applyAs(t *testing.T, manager, manifests string) {
	t.Helper()
	r := runCmd(t, manifests, kubectl, "apply", "--server-side", "--force-conflicts", "--field-manager="+manager, "-f", "-")
	if r.code != 0 {
		t.Fatalf("kubectl apply: %s", r.stderr)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func appManifests(ns, color, secret string, replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: %[1]s
  labels: {app: web}
data:
  color: %[2]s
  size: large
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: %[1]s
  labels: {app: web}
stringData:
  password: %[3]s
  user: admin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
  labels: {app: web}
spec:
  replicas: %[4]d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example.invalid/web:1
`, ns, color, secret, replicas)
}

func TestDiffNoDrift(t *testing.T) {
	needCluster(t)
	m := appManifests("diff-same", "blue", "s3cret-value", 2)
	applyAs(t, "kubectl-gitlab-agent", m)
	r := runCmd(t, m, kubectl, "gitlab-agent", "diff", "-f", "-")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("no drift: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The same verdict when another manager applied them (no fast path).
	m2 := appManifests("diff-same-kubectl", "blue", "s3cret-value", 2)
	applyAs(t, "kubectl", m2)
	r = runCmd(t, m2, kubectl, "gitlab-agent", "diff", "-f", "-", "-o", "summary")
	if r.code != 0 || !strings.Contains(r.stdout, "Plan: 0 to create, 0 to change, 0 to prune, 4 unchanged.") {
		t.Fatalf("no drift, other manager: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDiffChanges(t *testing.T) {
	needCluster(t)
	applyAs(t, "kubectl-gitlab-agent", appManifests("diff-change", "blue", "s3cret-value", 2))
	dir := t.TempDir()

	// One changed ConfigMap: exit 1, exactly that object.
	f := writeFile(t, dir, "a.yaml", appManifests("diff-change", "green", "s3cret-value", 2))
	r := runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f)
	if r.code != 1 || strings.Count(r.stdout, "--- live/") != 1 || !strings.Contains(r.stdout, "--- live/v1/ConfigMap/diff-change/settings\n+++ merged/v1/ConfigMap/diff-change/settings\n") ||
		!strings.Contains(r.stdout, "-  color: blue\n+  color: green\n") {
		t.Fatalf("changed ConfigMap: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A changed Secret key: masked, and only that key changes.
	f = writeFile(t, dir, "b.yaml", appManifests("diff-change", "blue", "n3w-value", 2))
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f)
	if r.code != 1 || strings.Contains(r.stdout, "n3w-value") || strings.Contains(r.stdout, "s3cret-value") ||
		!strings.Contains(r.stdout, "-  password: <secret sha256:") || !strings.Contains(r.stdout, "   user: <secret sha256:") {
		t.Fatalf("changed Secret: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, secret := range []string{"n3w-value", "s3cret-value", "bjN3LXZhbHVl", "czNjcmV0LXZhbHVl"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("Secret value %q printed", secret)
		}
	}
	// The hashes are keyed by a key of the user's (kept in their cache
	// directory), not by what is printed: another user's run of the same
	// diff shows other hashes, and nothing in the output lets a guess be
	// tested offline.
	hashes := regexp.MustCompile(`<secret sha256:[0-9a-f]+>`)
	cache := t.TempDir()
	other := runIn(t, runSpec{env: []string{"XDG_CACHE_HOME=" + cache}}, kubectl, "gitlab-agent", "diff", "-f", f)
	if other.code != 1 || len(hashes.FindAllString(other.stdout, -1)) == 0 || strings.Join(hashes.FindAllString(other.stdout, -1), " ") == strings.Join(hashes.FindAllString(r.stdout, -1), " ") {
		t.Errorf("another user's run: exit %d, hashes %q", other.code, hashes.FindAllString(other.stdout, -1))
	}
	if fi, err := os.Stat(filepath.Join(cache, "kubectl-gitlab-agent", "diff-mask.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the user's key: %v %v", fi, err)
	}
	r2 := runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f)
	if r2.stdout != r.stdout {
		t.Error("two runs hash the Secret differently")
	}
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f, "--show-secrets")
	if !strings.Contains(r.stdout, "+  password: bjN3LXZhbHVl") {
		t.Fatalf("--show-secrets: %s", r.stdout)
	}

	// An autoscaler's replicas: ignored on request.
	f = writeFile(t, dir, "c.yaml", appManifests("diff-change", "blue", "s3cret-value", 5))
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f, "-o", "json")
	var doc struct {
		Differs bool `json:"differs"`
		Objects []struct {
			Kind         string   `json:"kind"`
			Action       string   `json:"action"`
			ChangedPaths []string `json:"changedPaths"`
		} `json:"objects"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || !doc.Differs {
		t.Fatalf("replicas: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	for _, o := range doc.Objects {
		if o.Kind == "Deployment" && (o.Action != "changed" || strings.Join(o.ChangedPaths, ",") != ".spec.replicas") {
			t.Fatalf("Deployment: %+v", o)
		}
	}
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f, "--ignore-field", "Deployment:.spec.replicas")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("--ignore-field: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestDiffCreatePruneAndErrors(t *testing.T) {
	needCluster(t)
	base := appManifests("diff-prune", "blue", "s3cret-value", 2)
	applyAs(t, "kubectl-gitlab-agent", base)
	extra := `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: brand-new
  namespace: diff-prune
  labels: {app: web}
data: {a: "1"}
`
	// Drop the Deployment, add a ConfigMap, add an object of an unknown kind.
	withoutDeployment := base[:strings.Index(base, "---\napiVersion: apps/v1")]
	unknown := `---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: diff-prune
`
	r := runCmd(t, withoutDeployment+extra+unknown, kubectl, "gitlab-agent", "diff", "-f", "-", "--prune", "-l", "app=web", "-o", "summary")
	for _, want := range []string{
		"created     v1/ConfigMap/diff-prune/brand-new",
		"pruned      apps/v1/Deployment/diff-prune/web",
		"error       example.com/v1/Widget/diff-prune/w: the cluster has no kind Widget in example.com/v1",
		"unchanged   v1/ConfigMap/diff-prune/settings",
		"Plan: 1 to create, 0 to change, 1 to prune, 3 unchanged, 1 failed.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if r.code != 2 || !strings.Contains(r.stderr, "error: 1 of 6 objects could not be compared") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Unified: the new object against empty, the pruned one against nothing.
	r = runCmd(t, withoutDeployment+extra, kubectl, "gitlab-agent", "diff", "-f", "-", "--prune", "-l", "app=web")
	if r.code != 1 || !strings.Contains(r.stdout, "@@ -0,0 +1,") || !strings.Contains(r.stdout, "+++ merged/apps/v1/Deployment/diff-prune/web\n@@ -1,") {
		t.Fatalf("unified create/prune: exit %d\n%s", r.code, r.stdout)
	}
	// A namespace the same manifests create: its objects show as created.
	r = runCmd(t, appManifests("diff-new-ns", "blue", "x", 1), kubectl, "gitlab-agent", "diff", "-f", "-", "-o", "summary")
	if r.code != 1 || !strings.Contains(r.stdout, "Plan: 4 to create, 0 to change, 0 to prune, 0 unchanged.") {
		t.Fatalf("new namespace: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Flag errors exit 2 too.
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "--bogus")
	if r.code != 2 {
		t.Fatalf("bad flag: exit %d", r.code)
	}
}

func TestDiffAgent(t *testing.T) {
	needCluster(t)
	r := runCmd(t, "glagent-fake-diff-token\n", kubectl, "gitlab-agent", "render", "dif", "--token-file", "-")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	applyAs(t, "kubectl-gitlab-agent", r.stdout)
	r = runCmd(t, "glagent-fake-diff-token\n", kubectl, "gitlab-agent", "diff", "dif", "--token-file", "-")
	if r.code != 0 {
		t.Fatalf("agent as installed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, "glagent-fake-diff-token\n", kubectl, "gitlab-agent", "diff", "dif", "--token-file", "-", "--agent-version", "v17.4.0", "--replicas", "3", "-o", "json")
	if r.code != 1 {
		t.Fatalf("other values: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var doc struct {
		Objects []struct {
			Kind, Action string
			ChangedPaths []string `json:"changedPaths"`
		} `json:"objects"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, o := range doc.Objects {
		if o.Action == "changed" {
			changed++
			if o.Kind != "Deployment" || strings.Join(o.ChangedPaths, ",") != ".spec.replicas,.spec.template.spec.containers[0].image" {
				t.Errorf("changed %s: %v", o.Kind, o.ChangedPaths)
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d changed objects, want the Deployment only", changed)
	}
	if strings.Contains(r.stdout, "glagent-fake-diff-token") {
		t.Error("the token was printed")
	}
}

// TestDiffExternalProgramAndIgnoreFile: KUBECTL_EXTERNAL_DIFF gets the same
// files kubectl gives it (Secrets masked) and sets the exit code; an
// --ignore-file leaves out what it names.
func TestDiffExternalProgramAndIgnoreFile(t *testing.T) {
	needCluster(t)
	applyAs(t, "kubectl", appManifests("diff-ext", "blue", "s3cret-value", 2))
	dir := t.TempDir()
	f := writeFile(t, dir, "a.yaml", appManifests("diff-ext", "green", "n3w-s3cret-value", 3))

	// The file names: as kubectl's, for the same changes.
	ours := runIn(t, runSpec{env: []string{"KUBECTL_EXTERNAL_DIFF=ls"}}, kubectl, "gitlab-agent", "diff", "-f", f)
	theirs := runIn(t, runSpec{env: []string{"KUBECTL_EXTERNAL_DIFF=ls"}}, kubectl, "diff", "--server-side", "--field-manager=kubectl-gitlab-agent", "--force-conflicts", "-f", f)
	names := func(out string) string {
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, ".diff-ext.") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if ours.code != 0 || names(ours.stdout) == "" || names(ours.stdout) != names(theirs.stdout) {
		t.Errorf("ls of the directories: ours exit %d\n%s\nkubectl's exit %d\n%s", ours.code, ours.stdout, theirs.code, theirs.stdout)
	}

	// A program with quoted arguments, its exit code, no secret in the files.
	script := `sh -c 'cat "$1"/*; exit 1'`
	r := runIn(t, runSpec{env: []string{"KUBECTL_EXTERNAL_DIFF=" + script}}, kubectl, "gitlab-agent", "diff", "-f", f)
	if r.code != 1 || !strings.Contains(r.stdout, "color: green") || strings.Contains(r.stdout, "s3cret") || !strings.Contains(r.stdout, "<secret sha256:") {
		t.Errorf("external program: exit %d, stdout:\n%s\nstderr %s", r.code, r.stdout, r.stderr)
	}

	// -o json: the changed paths with old and new values, masked.
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f, "-o", "json")
	var doc struct {
		Objects []struct {
			Kind    string `json:"kind"`
			Changes []struct {
				Path     string `json:"path"`
				Old, New any
			} `json:"changes"`
		} `json:"objects"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 {
		t.Fatalf("-o json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	found := map[string]string{}
	for _, o := range doc.Objects {
		for _, c := range o.Changes {
			found[o.Kind+c.Path] = fmt.Sprintf("%v -> %v", c.Old, c.New)
		}
	}
	if found["ConfigMap.data.color"] != "blue -> green" || found["Deployment.spec.replicas"] != "2 -> 3" ||
		!strings.HasPrefix(found["Secret.data.password"], "<secret sha256:") || strings.Contains(r.stdout, "s3cret") {
		t.Errorf("-o json changes: %v", found)
	}

	// An ignore file for the replicas and the ConfigMap's color.
	ign := writeFile(t, dir, "ignore.yaml", "- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n- group: \"\"\n  kind: ConfigMap\n  name: settings\n  jsonPointers: [/data/color]\n")
	r = runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f, "-o", "summary", "--ignore-file", ign)
	if r.code != 1 || !strings.Contains(r.stdout, "Plan: 0 to create, 1 to change, 0 to prune, 3 unchanged.") || !strings.Contains(r.stdout, "Secret") {
		t.Errorf("--ignore-file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDiffMarkdownOnTheCluster: -o markdown against the real apiserver: the
// changed ConfigMap and Secret as fenced diff blocks, the Secret's values
// masked, hostile text inert, exit 1.
func TestDiffMarkdownOnTheCluster(t *testing.T) {
	needCluster(t)
	ns := "diff-md"
	applyAs(t, "kubectl-gitlab-agent", appManifests(ns, "blue", "hunter2-old", 1))
	t.Cleanup(func() { runCmd(t, "", kubectl, "delete", "namespace", ns, "--wait=false") })
	changed := strings.Replace(appManifests(ns, "red @all </details> ```", "hunter2-new", 1), "size: large", "size: \"<script>x</script>\"", 1)
	f := writeFile(t, t.TempDir(), "app.yaml", changed)
	r := runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", f, "-o", "markdown")
	if r.code != 1 {
		t.Fatalf("diff -o markdown: %+v", r)
	}
	for _, want := range []string{"| object | action | changes |", "diff\n", "v1/ConfigMap/" + ns + "/settings", "v1/Secret/" + ns + "/creds"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the note lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "hunter2") {
		t.Fatalf("a Secret's value is in the note:\n%s", r.stdout)
	}
	if n := strings.Count(r.stdout, "</details>"); n > strings.Count(r.stdout, "<details>")+1 {
		t.Errorf("</details> from a value is outside a code block:\n%s", r.stdout)
	}
	// The same manifests as applied: no difference, exit 0.
	same := writeFile(t, t.TempDir(), "same.yaml", appManifests(ns, "blue", "hunter2-old", 1))
	if r := runCmd(t, "", kubectl, "gitlab-agent", "diff", "-f", same, "-o", "markdown"); r.code != 0 || !strings.Contains(r.stdout, "No differences") {
		t.Fatalf("no differences: %+v", r)
	}
}
