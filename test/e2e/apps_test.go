package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// appSetup is an application Flux deploys from the fake GitLab: a
// GitRepository of infra/agents (with a deploy token) and a Kustomization
// of its path in namespace ns.
type appSetup struct {
	g        *gitlabEnv
	ns, name string
	path     string
}

func newApp(t *testing.T, g *gitlabEnv, ns, name, path string, files map[string]string) *appSetup {
	t.Helper()
	for p, content := range files {
		g.fake.SetFile(g.project, "main", path+"/"+p, []byte(content))
	}
	dt := g.fake.AddDeployToken(g.project, "flux-"+name, []string{"read_repository"}, nil)
	objs := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: %[2]s-auth, namespace: %[1]s}
stringData: {username: %[3]q, password: %[4]q}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: %[2]s, namespace: %[1]s}
spec: {url: %[5]q, interval: 10m, ref: {branch: main}, secretRef: {name: %[2]s-auth}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: %[2]s, namespace: %[1]s}
spec: {path: ./%[6]s, interval: 10m, prune: true, targetNamespace: %[1]s, sourceRef: {kind: GitRepository, name: %[2]s}}
`, ns, name, dt.Username, dt.Token, g.fake.URL+"/infra/agents.git", path)
	if r := runCmd(t, objs, kubectl, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("kubectl apply: %+v", r)
	}
	t.Cleanup(func() {
		runCmd(t, "", kubectl, "delete", "kustomization", "-n", ns, name, "--wait=true", "--timeout=60s")
		runCmd(t, "", kubectl, "delete", "namespace", ns, "--wait=false")
	})
	return &appSetup{g: g, ns: ns, name: name, path: path}
}

// appRow is apps list's JSON row.
type appRow struct {
	Namespace, Name, Kind, Source, Project, Revision, SourceRevision, Sync, Health string
	Suspended                                                                      bool
	Drifted                                                                        *int
}

func (a *appSetup) row(t *testing.T, extra ...string) appRow {
	t.Helper()
	r := a.g.run(t, nil, append([]string{"apps", "list", "-n", a.ns, "-o", "json"}, extra...)...)
	if r.code != 0 {
		t.Fatalf("apps list: %+v", r)
	}
	var doc struct{ Apps []appRow }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("apps list -o json: %v\n%s", err, r.stdout)
	}
	for _, row := range doc.Apps {
		if row.Name == a.name {
			return row
		}
	}
	t.Fatalf("apps list has no %s: %s", a.name, r.stdout)
	return appRow{}
}

// waitRow waits until the app's row satisfies ok.
func (a *appSetup) waitRow(t *testing.T, what string, ok func(appRow) bool, extra ...string) appRow {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		row := a.row(t, extra...)
		if ok(row) {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the app stays %+v", what, row)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (a *appSetup) tip(t *testing.T) string {
	t.Helper()
	log, err := a.g.fake.GitLog(a.g.project.ID, "main")
	if err != nil || len(log) == 0 {
		t.Fatal(err)
	}
	return log[0].ID
}

func configMapValue(t *testing.T, ns, name string) string {
	t.Helper()
	cm, err := clientset(t).CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data["v"]
}

func TestAppsWithFlux(t *testing.T) {
	needFlux(t)
	g := newGitLab(t)
	a := newApp(t, g, "apps-web", "web", "apps/web", map[string]string{
		"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {v: one}\n",
	})
	first := a.tip(t)
	p := []string{"-n", a.ns}

	// Flux applies it: Synced and Healthy.
	r := g.run(t, nil, append([]string{"apps", "reconcile", "web", "--with-source"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Kustomization apps-web/web reconciled: applied main@sha1:"+first) {
		t.Fatalf("apps reconcile: %+v", r)
	}
	row := a.row(t, "--no-diff")
	if row.Sync != "Synced" || row.Health != "Healthy" || row.Project != "infra/agents" || row.Source != "GitRepository/apps-web/web" {
		t.Fatalf("after a reconcile: %+v", row)
	}
	if configMapValue(t, a.ns, "settings") != "one" {
		t.Fatal("Flux did not apply the ConfigMap")
	}
	r = g.run(t, nil, append([]string{"apps", "get", "web"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "ConfigMap") || !strings.Contains(r.stdout, "GitLab project:  infra/agents") ||
		!strings.Contains(r.stdout, "Drifted:         none") {
		t.Fatalf("apps get: %+v", r)
	}
	// With the live objects compared: Synced, nothing drifted.
	row = a.row(t)
	if row.Sync != "Synced" || row.Drifted == nil || *row.Drifted != 0 {
		t.Fatalf("apps list compared: %+v", row)
	}
	r = g.run(t, nil, append([]string{"apps", "diff", "web"}, p...)...)
	if r.code != 0 {
		t.Fatalf("apps diff right after Flux applied: %+v", r)
	}

	// Drift: an edit by another field manager. Flux sees it only when it
	// reconciles; apps sees it now.
	if rr := runCmd(t, "", kubectl, "patch", "configmap", "settings", "-n", a.ns, "--type", "merge", "-p", `{"data":{"v":"edited"}}`); rr.code != 0 {
		t.Fatalf("kubectl patch: %+v", rr)
	}
	row = a.row(t)
	if row.Sync != "OutOfSync" || row.Drifted == nil || *row.Drifted != 1 {
		t.Fatalf("after a kubectl edit: %+v", row)
	}
	r = g.run(t, nil, append([]string{"apps", "diff", "web"}, p...)...)
	if r.code != 1 || !strings.Contains(r.stdout, "-  v: edited") || !strings.Contains(r.stdout, "+  v: one") {
		t.Fatalf("apps diff of the drift: %+v", r)
	}
	r = g.run(t, nil, append([]string{"apps", "get", "web"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "changed v1/ConfigMap/apps-web/settings") {
		t.Fatalf("apps get names the drifted object: %+v", r)
	}
	r = g.run(t, nil, append([]string{"apps", "reconcile", "web"}, p...)...)
	if r.code != 0 || configMapValue(t, a.ns, "settings") != "one" {
		t.Fatalf("reconcile repairs the drift: %+v", r)
	}
	if row = a.row(t); row.Sync != "Synced" || *row.Drifted != 0 {
		t.Fatalf("after a reconcile: %+v", row)
	}

	// Suspended, a new commit fetched: the source is ahead, OutOfSync.
	r = g.run(t, nil, append([]string{"apps", "suspend", "web"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "suspended") {
		t.Fatalf("apps suspend: %+v", r)
	}
	g.fake.SetFile(g.project, "main", "apps/web/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {v: two}\n"))
	second := a.tip(t)
	r = g.run(t, nil, append([]string{"apps", "reconcile", "web"}, p...)...)
	wantError(t, r, "is suspended", "apps resume web -n apps-web")
	if rr := runCmd(t, "", kubectl, "annotate", "--overwrite", "-n", a.ns, "gitrepository/web", "reconcile.fluxcd.io/requestedAt="+time.Now().Format(time.RFC3339Nano)); rr.code != 0 {
		t.Fatalf("annotate: %+v", rr)
	}
	row = a.waitRow(t, "the source fetches the new commit", func(r appRow) bool { return strings.HasSuffix(r.SourceRevision, second) }, "--no-diff")
	if row.Sync != "OutOfSync" || row.Health != "Suspended" || !strings.HasSuffix(row.Revision, first) {
		t.Fatalf("suspended behind its source: %+v", row)
	}
	r = g.run(t, nil, append([]string{"apps", "resume", "web"}, p...)...)
	if r.code != 0 {
		t.Fatalf("apps resume: %+v", r)
	}
	r = g.run(t, nil, append([]string{"apps", "sync", "web", "--with-source"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, second) || configMapValue(t, a.ns, "settings") != "two" {
		t.Fatalf("apps sync: %+v", r)
	}

	// History: both revisions, with GitLab's commits.
	r = g.run(t, nil, append([]string{"apps", "history", "web", "-o", "json"}, p...)...)
	var hist struct {
		Revisions []struct {
			SHA, Author, Title string
			Current            bool
		}
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &hist) != nil || len(hist.Revisions) < 2 ||
		hist.Revisions[0].SHA != second || !hist.Revisions[0].Current || hist.Revisions[1].SHA != first || hist.Revisions[0].Author == "" {
		t.Fatalf("apps history: %+v", r)
	}

	// Rollback to the first: a commit, applied by Flux.
	r = g.run(t, nil, append([]string{"apps", "rollback", "web", "--to", first}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "rolled apps-web/web back to "+first) {
		t.Fatalf("apps rollback: %+v", r)
	}
	if configMapValue(t, a.ns, "settings") != "one" {
		t.Fatal("the rollback did not restore the live ConfigMap")
	}
	if a.tip(t) == second {
		t.Fatal("no rollback commit")
	}

	// A missing app: one line (diff: exit 2).
	r = g.run(t, nil, append([]string{"apps", "get", "nope"}, p...)...)
	wantError(t, r, "no Flux Kustomization apps-web/nope")
	r = g.run(t, nil, append([]string{"apps", "diff", "nope"}, p...)...)
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "no Flux Kustomization apps-web/nope") {
		t.Fatalf("apps diff of a missing app: %+v", r)
	}
}

// TestAppsDiffMatchesKustomizeController: for each Kustomization feature,
// what kustomize-controller applied is what apps diff builds: right after
// Flux applied it, apps diff exits 0.
func TestAppsDiffMatchesKustomizeController(t *testing.T) {
	needFlux(t)
	g := newGitLab(t)
	deploy := func(name, image string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + "}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: " + name + "}}\n" +
			"  template:\n    metadata: {labels: {app: " + name + "}}\n    spec:\n      containers:\n      - {name: c, image: " + image + "}\n"
	}
	a := newApp(t, g, "apps-parity", "parity", "apps/parity", map[string]string{
		// No kustomization.yaml: Flux generates one of every manifest.
		"cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  env: \"${ENV}\"\n  region: \"${REGION:=eu}\"\n  secret: \"${TOKEN}\"\n  plain: x\n",
		"deploy.yaml":  deploy("web", "nginx:1.0"),
		"sub/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n",
		"ignored.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored, annotations: {kustomize.toolkit.fluxcd.io/ssa: Ignore}}\ndata: {a: b}\n",
	})
	vars := `apiVersion: v1
kind: ConfigMap
metadata: {name: vars, namespace: apps-parity}
data: {ENV: prod}
---
apiVersion: v1
kind: Secret
metadata: {name: secret-vars, namespace: apps-parity}
stringData: {TOKEN: s3cr3t-value}
`
	if r := runCmd(t, vars, kubectl, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("kubectl apply: %+v", r)
	}
	spec := `{"spec":{"namePrefix":"pre-","nameSuffix":"-suf","commonMetadata":{"labels":{"team":"a"},"annotations":{"owner":"x"}},
"images":[{"name":"nginx","newTag":"1.27"}],
"patches":[{"target":{"kind":"Deployment"},"patch":"- op: replace\n  path: /spec/replicas\n  value: 2"}],
"postBuild":{"substitute":{"REGION":"us"},"substituteFrom":[{"kind":"ConfigMap","name":"vars"},{"kind":"Secret","name":"secret-vars"},{"kind":"ConfigMap","name":"absent","optional":true}]}}}`
	if r := runCmd(t, "", kubectl, "patch", "kustomization", "parity", "-n", a.ns, "--type", "merge", "-p", spec); r.code != 0 {
		t.Fatalf("kubectl patch: %+v", r)
	}
	p := []string{"-n", a.ns}
	r := g.run(t, nil, append([]string{"apps", "reconcile", "parity", "--with-source"}, p...)...)
	if r.code != 0 {
		t.Fatalf("apps reconcile: %+v", r)
	}
	cm, err := clientset(t).CoreV1().ConfigMaps(a.ns).Get(context.Background(), "pre-settings-suf", metav1.GetOptions{})
	if err != nil || cm.Data["env"] != "prod" || cm.Data["region"] != "us" || cm.Labels["team"] != "a" {
		t.Fatalf("Flux did not apply what the test expects: %v %+v", err, cm)
	}
	r = g.run(t, nil, append([]string{"apps", "diff", "parity", "-o", "json"}, p...)...)
	if r.code != 0 {
		t.Fatalf("apps diff after Flux applied the same revision must find nothing: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "s3cr3t-value") {
		t.Fatal("a value substituted from a Secret is shown")
	}
	// A change of a substituted Secret value is a drift, masked.
	if rr := runCmd(t, "", kubectl, "patch", "secret", "secret-vars", "-n", a.ns, "--type", "merge", "-p", `{"stringData":{"TOKEN":"n3w-s3cr3t"}}`); rr.code != 0 {
		t.Fatalf("kubectl patch: %+v", rr)
	}
	r = g.run(t, nil, append([]string{"apps", "diff", "parity"}, p...)...)
	if r.code != 1 || strings.Contains(r.stdout+r.stderr, "s3cr3t") {
		t.Fatalf("a changed Secret variable: %+v", r)
	}
}

// TestAppsThroughKAS: the apps commands through a kubeconfig context that
// goes through KAS's Kubernetes API proxy, as through a direct one.
func TestAppsThroughKAS(t *testing.T) {
	needFlux(t)
	te := newTunnel(t)
	a := newApp(t, te.gitlabEnv, "apps-kas", "web", "apps/kas", map[string]string{
		"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {v: one}\n",
	})
	kc := filepath.Join(t.TempDir(), "config")
	if r := te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kc, "--ca-file", te.caFile); r.code != 0 {
		t.Fatalf("kubeconfig: %+v", r)
	}
	host := strings.NewReplacer(".", "_", ":", "_").Replace(strings.TrimPrefix(te.fake.URL, "http://"))
	via := []string{"-n", a.ns, "--kubeconfig", kc, "--context", host + "-infra_agents-tun"}
	before := len(te.kas.Requests())
	r := te.run(t, nil, kubectl, append([]string{"gitlab-agent", "apps", "reconcile", "web", "--with-source"}, via...)...)
	if r.code != 0 {
		t.Fatalf("apps reconcile through KAS: %+v", r)
	}
	r = te.run(t, nil, kubectl, append([]string{"gitlab-agent", "apps", "list", "-o", "json"}, via...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"sync": "Synced"`) || !strings.Contains(r.stdout, `"drifted": 0`) {
		t.Fatalf("apps list through KAS: %+v", r)
	}
	r = te.run(t, nil, kubectl, append([]string{"gitlab-agent", "apps", "diff", "web"}, via...)...)
	if r.code != 0 {
		t.Fatalf("apps diff through KAS: %+v", r)
	}
	if len(te.kas.Requests()) == before {
		t.Fatal("nothing went through KAS")
	}
}
