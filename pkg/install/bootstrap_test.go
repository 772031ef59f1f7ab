package install

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitops"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// The end-to-end tests run bootstrap against Flux's real controllers; these
// run it in-process against the fake cluster, where fakeFlux stands in for
// them, so that every failure path is quick to reach.

// fakeFlux reconciles the fake cluster's GitRepositories and Kustomizations
// when asked (reconcile.fluxcd.io/requestedAt): a GitRepository's artifact
// is its branch's tip in the fake GitLab, and a Kustomization applies the
// files its path's kustomization.yaml lists there, labelled as Flux labels
// them. Test code only.
type fakeFlux struct {
	w *world
	// fail, when set, is the Ready=False message of every Kustomization.
	fail string
}

func (w *world) withFlux(t *testing.T) *fakeFlux {
	t.Helper()
	w.cluster.AddKind(flux.SourceAPIVersion, "GitRepository", "gitrepositories", true, true)
	w.cluster.AddKind(flux.KustomizeAPIVersion, "Kustomization", "kustomizations", true, true)
	for _, name := range requiredCRDs() {
		w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"versions": []any{map[string]any{"name": "v1", "served": true}}},
		}})
	}
	w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flux-system"}}})
	w.gl.SetFile(w.project, "main", "README.md", []byte("# agents\n"))
	f := &fakeFlux{w: w}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			f.reconcile(t, ctx)
			time.Sleep(2 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

func requiredCRDs() []string {
	return []string{"gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"}
}

func (f *fakeFlux) reconcile(t *testing.T, ctx context.Context) {
	c := f.w.cluster
	grs, _ := c.ListObjects(ctx, flux.GitRepositories, "")
	for _, gr := range grs {
		want := gr.GetAnnotations()[flux.RequestedAtAnnotation]
		if want == "" || flux.ReadStatus(gr).Handled == want {
			continue
		}
		branch := flux.Branch(gr)
		log, err := f.w.gl.GitLog(f.w.project.ID, branch)
		if err != nil || len(log) == 0 {
			continue
		}
		setStatus(c, gr, want, map[string]any{"artifact": map[string]any{"revision": branch + "@sha1:" + log[0].ID}}, "")
	}
	kss, _ := c.ListObjects(ctx, flux.Kustomizations, "")
	for _, ks := range kss {
		want := ks.GetAnnotations()[flux.RequestedAtAnnotation]
		if want == "" || flux.ReadStatus(ks).Handled == want {
			continue
		}
		ref, _, _ := unstructured.NestedStringMap(ks.Object, "spec", "sourceRef")
		if ref["namespace"] == "" {
			ref["namespace"] = ks.GetNamespace()
		}
		gr := c.Get(kube.Ref{APIVersion: flux.SourceAPIVersion, Kind: "GitRepository", Namespace: ref["namespace"], Name: ref["name"]})
		if gr == nil {
			continue
		}
		rev := flux.ReadStatus(gr).Revision
		p, _, _ := unstructured.NestedString(ks.Object, "spec", "path")
		if f.fail == "" {
			f.apply(t, ctx, ks, flux.Branch(gr), flux.CleanPath(p))
		}
		setStatus(c, ks, want, map[string]any{"lastAppliedRevision": rev}, f.fail)
	}
}

// apply applies the files the kustomization.yaml at dir lists, or, when
// dir has none, those of each kustomization.yaml below it (as Flux's
// generated kustomization takes them in).
func (f *fakeFlux) apply(t *testing.T, ctx context.Context, ks *unstructured.Unstructured, branch, dir string) {
	log, err := f.w.gl.GitLog(f.w.project.ID, branch)
	if err != nil || len(log) == 0 {
		return
	}
	files := log[0].Files
	var dirs []string
	if _, ok := files[path.Join(dir, gitops.Kustomization)]; ok {
		dirs = []string{dir}
	} else {
		for p := range files {
			if path.Base(p) == gitops.Kustomization && flux.Under(p, dir) {
				dirs = append(dirs, path.Dir(p))
			}
		}
	}
	for _, d := range dirs {
		for _, name := range gitops.Resources(files[path.Join(d, gitops.Kustomization)]) {
			b, ok := files[path.Join(d, name)]
			if !ok {
				continue
			}
			o := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(b, &o.Object); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			l := o.GetLabels()
			l[flux.NameLabel], l[flux.NamespaceLabel] = ks.GetName(), ks.GetNamespace()
			o.SetLabels(l)
			m, err := kube.FromObjects([]map[string]any{o.Object}, name)
			if err != nil {
				t.Error(err)
				continue
			}
			targets, err := f.w.cluster.MapAll(m, o.GetNamespace())
			if err == nil {
				err = f.w.cluster.ApplyAll(ctx, targets, "kustomize-controller")
			}
			if err != nil {
				t.Errorf("applying %s: %v", name, err)
			}
		}
	}
}

func setStatus(c interface {
	Put(...*unstructured.Unstructured)
}, o *unstructured.Unstructured, handled string, extra map[string]any, fail string) {
	ready := map[string]any{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "applied"}
	if fail != "" {
		ready = map[string]any{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": fail}
	}
	st := map[string]any{"lastHandledReconcileAt": handled, "observedGeneration": o.GetGeneration(), "conditions": []any{ready}}
	for k, v := range extra {
		st[k] = v
	}
	o = o.DeepCopy()
	o.Object["status"] = st
	c.Put(o)
}

func (w *world) bootstrapOpts(name string) BootstrapOptions {
	o := w.opts(name)
	o.Timeout = 10 * time.Second
	return BootstrapOptions{Options: o, ManifestPath: "clusters/" + name, FluxNamespace: "flux-system", Environment: "agents/" + name}
}

func (w *world) bootstrapEnv() Env {
	e := w.env()
	e.Flux = w.cluster
	return e
}

func (w *world) commits(t *testing.T) int {
	t.Helper()
	log, err := w.gl.GitLog(w.project.ID, "main")
	if err != nil {
		t.Fatal(err)
	}
	return len(log)
}

// noSecretsInGit checks every revision of every branch for the tokens.
func (w *world) noSecretsInGit(t *testing.T) {
	t.Helper()
	for _, a := range w.gl.Agents(w.project) {
		for _, tok := range w.gl.AgentTokens(&a) {
			if w.gl.AllHistoryContains(w.project.ID, tok.Token) {
				t.Errorf("agent token %d is in git", tok.ID)
			}
		}
	}
	for _, d := range w.gl.DeployTokens(w.project.ID) {
		if w.gl.AllHistoryContains(w.project.ID, d.Token) {
			t.Errorf("deploy token %d is in git", d.ID)
		}
	}
}

func TestBootstrapThenUpToDateThenUpgrade(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	ctx := context.Background()
	before := w.commits(t)
	res, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("bs"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Connected || res.Commit == nil || res.GitRepository.Action != "created" || res.Kustomization.Action != "created" ||
		res.EnvironmentDone != "created" || !res.DeployTokenNew || w.commits(t) != before+1 {
		t.Fatalf("bootstrap: %+v", res)
	}
	if flux.RevisionSHA(res.Revision) != res.Commit.ID {
		t.Errorf("applied %s, committed %s", res.Revision, res.Commit.ID)
	}
	// The commit touches the agent's directory and its config file only.
	log, err := w.gl.GitLog(w.project.ID, "main")
	if err != nil || len(log) < 2 {
		t.Fatal(err)
	}
	for p, content := range log[0].Files {
		if old, ok := log[1].Files[p]; ok && string(old) == string(content) {
			continue
		}
		if !strings.HasPrefix(p, "clusters/bs/gitlab-agent/") && p != ".gitlab/agents/bs/config.yaml" {
			t.Errorf("the commit touches %s", p)
		}
	}
	for p := range log[1].Files {
		if _, ok := log[0].Files[p]; !ok {
			t.Errorf("the commit removes %s", p)
		}
	}
	// The config file is in the same commit.
	if cfg, ok := w.gl.File(w.project, "main", ".gitlab/agents/bs/config.yaml"); !ok || !strings.Contains(string(cfg), "ci_access") {
		t.Fatalf("config: %q", cfg)
	}
	// The token Secret records the setup; the deploy token's Secret holds it.
	s := w.cluster.Get(kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: "gitlab-agent-bs", Name: "bs-gitlab-agent-token"})
	if s == nil || !strings.Contains(s.GetAnnotations()[BootstrapAnnotation], `"dir":"clusters/bs/gitlab-agent"`) {
		t.Fatalf("token Secret: %v", s)
	}
	w.noSecretsInGit(t)

	again, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("bs"))
	if err != nil || !again.UpToDate || again.Commit != nil || again.TokenCreated || again.DeployTokenNew || w.commits(t) != before+1 {
		t.Fatalf("re-run: %v %+v", err, again)
	}

	// install and upgrade refuse now.
	_, err = Install(ctx, w.bootstrapEnv(), InstallOptions{Options: w.opts("bs")})
	var fm *FluxManagedError
	if !errors.As(err, &fm) || !strings.Contains(err.Error(), "--manifest-path clusters/bs") {
		t.Fatalf("install over bootstrap: %v", err)
	}
	if _, err = Upgrade(ctx, w.bootstrapEnv(), w.opts("bs")); !errors.As(err, &fm) {
		t.Fatalf("upgrade over bootstrap: %v", err)
	}

	o := w.bootstrapOpts("bs")
	tag := "v17.3.0"
	o.Input.Values.Image.Tag = tag
	o.Input.Set = manifest.Keys{"image.tag": true}
	up, err := Bootstrap(ctx, w.bootstrapEnv(), o)
	if err != nil || up.Commit == nil || len(up.Files) != 1 || !strings.HasPrefix(up.Files[0].Path, "clusters/bs/gitlab-agent/deployment-") {
		t.Fatalf("upgrade by re-run: %v %+v", err, up)
	}
	d, _ := w.cluster.GetDeployment(ctx, "gitlab-agent-bs", "bs-gitlab-agent-v2")
	if d == nil || !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":"+tag) {
		t.Fatalf("the Deployment did not move")
	}

	// Uninstall: a commit removes the files, the Kustomization goes.
	un, err := Uninstall(ctx, w.bootstrapEnv(), UninstallOptions{Options: w.opts("bs"), Confirm: func(string) (bool, error) { return true, nil }})
	if err != nil || un.Bootstrap == nil || un.Bootstrap.Commit == nil || len(un.Bootstrap.RevokedDeployTokens) != 1 {
		t.Fatalf("uninstall: %v %+v", err, un)
	}
	if _, ok := w.gl.File(w.project, "main", "clusters/bs/gitlab-agent/kustomization.yaml"); ok {
		t.Fatal("the files are still in git")
	}
	for _, d := range w.gl.DeployTokens(w.project.ID) {
		if !d.Revoked {
			t.Errorf("deploy token %d is active", d.ID)
		}
	}
	w.noSecretsInGit(t)
}

func TestBootstrapDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	o := w.bootstrapOpts("dr")
	o.DryRun = DryRunClient
	before := w.commits(t)
	res, err := Bootstrap(context.Background(), w.bootstrapEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(res.Plan, "\n")
	for _, want := range []string{`register agent "dr"`, "create a token", "commit ", "create a deploy token", "apply GitRepository flux-system/gitlab-agent-dr", "apply Kustomization flux-system/gitlab-agent-dr", `create environment "agents/dr"`} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if len(res.Files) < 3 || len(res.Files[0].Hunks) == 0 {
		t.Fatalf("files: %+v", res.Files)
	}
	if w.commits(t) != before || len(w.gl.Agents(w.project)) != 0 || len(w.gl.DeployTokens(w.project.ID)) != 0 || len(w.gl.Environments(w.project.ID)) != 0 {
		t.Fatal("the dry run changed GitLab")
	}
	for _, c := range w.cluster.Calls() {
		if c.Method == "Apply" || c.Method == "ApplyObject" || c.Method == "ClaimSecret" || c.Method == "MergePatch" {
			t.Fatalf("the dry run wrote to the cluster: %v", c)
		}
	}
}

func TestBootstrapNeedsFlux(t *testing.T) {
	w := newWorld(t)
	_, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("nf"))
	var ni *flux.NotInstalledError
	if !errors.As(err, &ni) || !strings.Contains(err.Error(), "flux install") {
		t.Fatalf("no Flux: %v", err)
	}
	if len(w.gl.Requests()) != 0 || len(w.gl.Agents(w.project)) != 0 {
		t.Fatalf("GitLab was asked or changed before Flux was found: %d requests", len(w.gl.Requests()))
	}
}

func TestBootstrapMergeRequest(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	ctx := context.Background()
	o := w.bootstrapOpts("mr")
	o.MergeRequest = true
	before := w.commits(t)
	res, err := Bootstrap(ctx, w.bootstrapEnv(), o)
	if err != nil || res.MergeRequest == nil || res.Kustomization != nil || w.commits(t) != before {
		t.Fatalf("--merge-request: %v %+v", err, res)
	}
	o.Input.Values.Replicas = 3
	o.Input.Set = manifest.Keys{"replicas": true}
	again, err := Bootstrap(ctx, w.bootstrapEnv(), o)
	if err != nil || again.MergeRequest == nil || again.MergeRequest.IID != res.MergeRequest.IID || again.Commit == nil {
		t.Fatalf("second --merge-request: %v %+v", err, again)
	}
	if mrs := w.gl.MergeRequests(w.project.ID); len(mrs) != 1 {
		t.Fatalf("%d merge requests", len(mrs))
	}
	if _, ok := w.gl.File(w.project, "main", "clusters/mr/gitlab-agent/kustomization.yaml"); ok {
		t.Fatal("--merge-request wrote to main")
	}
	w.noSecretsInGit(t)
}

// TestBootstrapFailuresRevokeWhatTheRunMade: GitLab failing at each step
// leaves no token of the run active, and one error.
func TestBootstrapFailuresRevokeWhatTheRunMade(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault fakegitlab.Fault
		want  string
	}{
		{"commit 400", fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/repository/commits", Status: 400}, "400"},
		{"commit 409", fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/repository/commits", Status: 409}, "409"},
		{"commit 500", fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/repository/commits", Status: 500}, "500"},
		{"deploy token 403", fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/deploy_tokens", Status: 403}, "403"},
		{"environment 400", fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/environments", Status: 400}, "400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.withFlux(t)
			w.gl.Inject(c.fault)
			_, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("bf"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
			if ids := w.active(t, "bf"); len(ids) != 0 {
				t.Errorf("agent tokens %v stay active", ids)
			}
			for _, d := range w.gl.DeployTokens(w.project.ID) {
				if !d.Revoked {
					t.Errorf("deploy token %d stays active", d.ID)
				}
			}
			w.noSecretsInGit(t)
		})
	}
}

func TestBootstrapFluxFailureSaysWhy(t *testing.T) {
	w := newWorld(t)
	f := w.withFlux(t)
	f.fail = "kustomize build failed: accumulating resources"
	_, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("ff"))
	var fe *flux.FailedError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "accumulating resources") {
		t.Fatalf("a failing Kustomization: %v", err)
	}
	if ids := w.active(t, "ff"); len(ids) != 0 {
		t.Errorf("agent tokens %v stay active", ids)
	}
}

// TestBootstrapReusesWhatFluxBootstrapMade: a GitRepository of the
// project's branch (over SSH, as flux bootstrap gitlab makes it) and its
// flux-system Kustomization at clusters/NAME are used, not duplicated; one
// of another host is never.
func TestBootstrapReusesWhatFluxBootstrapMade(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	host := strings.TrimPrefix(strings.TrimPrefix(w.gl.URL, "http://"), "https://")
	host = strings.Split(host, ":")[0]
	w.cluster.Put(
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.SourceAPIVersion, "kind": "GitRepository",
			"metadata": map[string]any{"name": "evil", "namespace": "flux-system"},
			"spec":     map[string]any{"url": "https://evil.example.com/infra/agents.git", "ref": map[string]any{"branch": "main"}}}},
	)
	res, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("ru"))
	if err != nil || res.GitRepository.Name != "gitlab-agent-ru" {
		t.Fatalf("another host's GitRepository was used: %v %+v", err, res.GitRepository)
	}
	_ = host

	w2 := newWorld(t)
	w2.withFlux(t)
	proj := w2.gl.URL + "/infra/agents.git"
	w2.cluster.Put(
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.SourceAPIVersion, "kind": "GitRepository",
			"metadata": map[string]any{"name": "flux-system", "namespace": "flux-system"},
			"spec":     map[string]any{"url": proj, "ref": map[string]any{"branch": "main"}}}},
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.KustomizeAPIVersion, "kind": "Kustomization",
			"metadata": map[string]any{"name": "flux-system", "namespace": "flux-system"},
			"spec":     map[string]any{"path": "./clusters/ru", "prune": true, "sourceRef": map[string]any{"kind": "GitRepository", "name": "flux-system"}}}},
	)
	res, err = Bootstrap(context.Background(), w2.bootstrapEnv(), w2.bootstrapOpts("ru"))
	if err != nil {
		t.Fatal(err)
	}
	if res.GitRepository.Action != "reused" || res.GitRepository.Name != "flux-system" || res.Kustomization.Name != "flux-system" || res.DeployTokenNew {
		t.Fatalf("flux bootstrap's objects were not used: %+v %+v", res.GitRepository, res.Kustomization)
	}
	if w2.cluster.Get(kube.Ref{APIVersion: flux.KustomizeAPIVersion, Kind: "Kustomization", Namespace: "flux-system", Name: "gitlab-agent-ru"}) != nil {
		t.Fatal("a second Kustomization applies the agent")
	}
	envs := w2.gl.Environments(w2.project.ID)
	if len(envs) != 1 || envs[0].FluxResourcePath != "kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/flux-system" {
		t.Fatalf("environment: %+v", envs)
	}
}

// TestBootstrapRefusesASymlinkedPath: a manifest path through a symbolic
// link in the repository is refused before anything is made.
func TestBootstrapRefusesASymlinkedPath(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	if err := w.gl.SetSymlink(w.project, "main", "clusters", "/etc"); err != nil {
		t.Fatal(err)
	}
	_, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("sl"))
	if err == nil || !strings.Contains(err.Error(), "clusters in infra/agents is a symbolic link") {
		t.Fatalf("a symlinked path: %v", err)
	}
	if len(w.gl.Agents(w.project)) != 0 {
		t.Fatal("an agent was registered")
	}
	w.gl.SetFile(w.project, "main", "files/sl", []byte("x"))
	o := w.bootstrapOpts("sl")
	o.ManifestPath = "files/sl"
	if _, err := Bootstrap(context.Background(), w.bootstrapEnv(), o); err == nil || !strings.Contains(err.Error(), "is a file, not a directory") {
		t.Fatalf("a file on the path: %v", err)
	}
}

// TestBootstrapOnAnotherBranch: the files go to --branch, which Flux
// follows; the config file to the default branch, where KAS reads it.
func TestBootstrapOnAnotherBranch(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	w.gl.SetFile(w.project, "prod", "README.md", []byte("prod\n"))
	o := w.bootstrapOpts("ob")
	o.Branch = "prod"
	res, err := Bootstrap(context.Background(), w.bootstrapEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.gl.File(w.project, "prod", "clusters/ob/gitlab-agent/kustomization.yaml"); !ok {
		t.Fatal("the files are not on prod")
	}
	if _, ok := w.gl.File(w.project, "main", "clusters/ob/gitlab-agent/kustomization.yaml"); ok {
		t.Fatal("the files are on main")
	}
	if _, ok := w.gl.File(w.project, "main", ".gitlab/agents/ob/config.yaml"); !ok {
		t.Fatal("the config file is not on main")
	}
	gr := w.cluster.Get(kube.Ref{APIVersion: flux.SourceAPIVersion, Kind: "GitRepository", Namespace: "flux-system", Name: res.GitRepository.Name})
	if gr == nil || flux.Branch(gr) != "prod" {
		t.Fatalf("the GitRepository does not follow prod: %v", gr)
	}
}

// TestBootstrapMissingBranch: a --branch that does not exist is refused
// before anything is made.
func TestBootstrapMissingBranch(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	o := w.bootstrapOpts("mb")
	o.Branch = "nope"
	_, err := Bootstrap(context.Background(), w.bootstrapEnv(), o)
	if err == nil || !strings.Contains(err.Error(), `branch "nope" does not exist in infra/agents`) {
		t.Fatalf("a missing branch: %v", err)
	}
	if len(w.gl.Agents(w.project)) != 0 {
		t.Fatal("an agent was registered")
	}
}

// TestBootstrapOverwritesNothingNotItsOwn: a Secret or Kustomization of
// bootstrap's names that bootstrap did not make is refused, not rewritten.
func TestBootstrapOverwritesNothingNotItsOwn(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "gitlab-agent-ow-git", "namespace": "flux-system"}, "data": map[string]any{"password": "c29tZW9uZSBlbHNl"}}})
	_, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("ow"))
	if err == nil || !strings.Contains(err.Error(), "is not bootstrap's") {
		t.Fatalf("another's Secret: %v", err)
	}
	s := w.cluster.Get(kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: "flux-system", Name: "gitlab-agent-ow-git"})
	if s == nil || s.Object["data"].(map[string]any)["password"] != "c29tZW9uZSBlbHNl" {
		t.Fatalf("the Secret was rewritten: %v", s)
	}
	for _, d := range w.gl.DeployTokens(w.project.ID) {
		if !d.Revoked {
			t.Errorf("deploy token %d stays", d.ID)
		}
	}
}
