package flux

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

func obj(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
}

func TestSameRepository(t *testing.T) {
	const project = "https://gitlab.example.com/infra/fleet.git"
	for _, c := range []struct {
		flux string
		same bool
	}{
		{"https://gitlab.example.com/infra/fleet.git", true},
		{"https://gitlab.example.com/infra/fleet", true},
		{"https://GitLab.Example.com/Infra/Fleet/", true},
		{"ssh://git@gitlab.example.com/infra/fleet", true}, // flux bootstrap gitlab's default
		{"ssh://git@gitlab.example.com:2222/infra/fleet.git", true},
		// Never another host, project or endpoint.
		{"https://gitlab.example.com.evil.com/infra/fleet.git", false},
		{"https://evil.com/gitlab.example.com/infra/fleet.git", false},
		{"https://gitlab.example.com/infra/fleet-other.git", false},
		{"https://gitlab.example.com/infra/fleet/sub.git", false},
		{"https://gitlab.example.com/infra/../infra/fleet.git", false},
		{"http://gitlab.example.com/infra/fleet.git", false},
		{"https://gitlab.example.com:8443/infra/fleet.git", false},
		{"https://gitlab.example.com/infra/fleet.git?x=1", false},
		{"git@gitlab.example.com:infra/fleet.git", false}, // scp-like: not a URL Flux takes
		{"", false},
	} {
		if got := SameRepository(c.flux, project); got != c.same {
			t.Errorf("SameRepository(%q) = %v, want %v", c.flux, got, c.same)
		}
	}
}

func TestFindGitRepositoryFollowsTheBranch(t *testing.T) {
	r := Repo{URL: "https://gitlab.example.com/infra/fleet.git", Branch: "main"}
	grs := []*unstructured.Unstructured{
		obj(SourceAPIVersion, "GitRepository", "apps", "tag", map[string]any{"url": r.URL, "ref": map[string]any{"tag": "v1"}}),
		obj(SourceAPIVersion, "GitRepository", "apps", "other", map[string]any{"url": "https://gitlab.example.com/infra/other.git", "ref": map[string]any{"branch": "main"}}),
		obj(SourceAPIVersion, "GitRepository", "apps", "dev", map[string]any{"url": r.URL, "ref": map[string]any{"branch": "dev"}}),
		obj(SourceAPIVersion, "GitRepository", "zzz", "fleet", map[string]any{"url": r.URL, "ref": map[string]any{"branch": "main"}}),
		obj(SourceAPIVersion, "GitRepository", "flux-system", "flux-system", map[string]any{"url": "ssh://git@gitlab.example.com/infra/fleet", "ref": map[string]any{"branch": "main"}}),
	}
	if got := FindGitRepository(grs, r, "flux-system"); got == nil || got.GetName() != "flux-system" {
		t.Fatalf("found %v, want flux-system/flux-system (in the Flux namespace first)", got)
	}
	if got := FindGitRepository(grs[:4], r, "flux-system"); got == nil || got.GetName() != "fleet" {
		t.Fatalf("found %v, want zzz/fleet", got)
	}
	if got := FindGitRepository(grs[:3], r, "flux-system"); got != nil {
		t.Fatalf("found %s, want none: a tag, another project and another branch are not the source", got.GetName())
	}
	master := obj(SourceAPIVersion, "GitRepository", "x", "noref", map[string]any{"url": r.URL})
	if Branch(master) != "master" {
		t.Errorf("a GitRepository without ref follows %q, want master (Flux's default)", Branch(master))
	}
}

func TestCoveringKustomizations(t *testing.T) {
	ks := func(ns, name, p, src, srcNS string) *unstructured.Unstructured {
		ref := map[string]any{"kind": "GitRepository", "name": src}
		if srcNS != "" {
			ref["namespace"] = srcNS
		}
		return obj(KustomizeAPIVersion, "Kustomization", ns, name, map[string]any{"path": p, "sourceRef": ref})
	}
	kss := []*unstructured.Unstructured{
		ks("flux-system", "flux-system", "./clusters/prod", "flux-system", ""),
		ks("flux-system", "apps", "./clusters/prod-apps", "flux-system", ""), // a sibling with a common prefix
		ks("flux-system", "gitlab-agent-prod", "./clusters/prod/gitlab-agent", "flux-system", ""),
		ks("other", "x", "./", "flux-system", ""), // another namespace's source of that name
		ks("other", "root", "./", "flux-system", "flux-system"),
	}
	got := CoveringKustomizations(kss, "flux-system", "flux-system", "clusters/prod/gitlab-agent", "flux-system/gitlab-agent-prod")
	var names []string
	for _, k := range got {
		names = append(names, k.GetNamespace()+"/"+k.GetName())
	}
	if strings.Join(names, ",") != "flux-system/flux-system,other/root" {
		t.Fatalf("covering = %v", names)
	}
	if b := Between("clusters/prod", "clusters/prod/a/gitlab-agent"); strings.Join(b, ",") != "clusters/prod,clusters/prod/a" {
		t.Errorf("Between = %v", b)
	}
	if b := Between("", "clusters/gitlab-agent"); strings.Join(b, ",") != ",clusters" {
		t.Errorf("Between from the root = %q", b)
	}
	if CleanPath("./") != "" || CleanPath("./clusters/prod/") != "clusters/prod" || CleanPath("/../x") != "x" {
		t.Errorf("CleanPath")
	}
}

func TestRevisionSHA(t *testing.T) {
	for in, want := range map[string]string{
		"main@sha1:0123abcd":                 "0123abcd",
		"sha1:0123abcd":                      "0123abcd",
		"refs/merge-requests/1/head@sha1:ff": "ff",
		"v1.0.0":                             "",
	} {
		if got := RevisionSHA(in); got != want {
			t.Errorf("RevisionSHA(%q) = %q, want %q", in, got, want)
		}
	}
}

// fluxCluster is a fake cluster that knows Flux's kinds.
func fluxCluster() *fake.Cluster {
	c := fake.New()
	c.AddKind(SourceAPIVersion, "GitRepository", "gitrepositories", true, true)
	c.AddKind(KustomizeAPIVersion, "Kustomization", "kustomizations", true, true)
	return c
}

func crd(name string, served bool) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"versions": []any{map[string]any{"name": "v1", "served": served}}},
	}}
}

func TestInstalled(t *testing.T) {
	ctx := context.Background()
	c := fluxCluster()
	var ni *NotInstalledError
	if err := Installed(ctx, c); !errors.As(err, &ni) || !strings.Contains(err.Error(), "flux install") {
		t.Fatalf("no CRDs: %v", err)
	}
	c.Put(crd("gitrepositories.source.toolkit.fluxcd.io", true), crd("kustomizations.kustomize.toolkit.fluxcd.io", false))
	if err := Installed(ctx, c); err == nil || !strings.Contains(err.Error(), "does not serve v1") {
		t.Fatalf("v1 not served: %v", err)
	}
	c.Put(crd("kustomizations.kustomize.toolkit.fluxcd.io", true))
	if err := Installed(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileAsFluxDoes(t *testing.T) {
	ctx := context.Background()
	c := fluxCluster()
	c.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flux-system"}}})
	ks := obj(KustomizeAPIVersion, "Kustomization", "flux-system", "app", map[string]any{"suspend": true})
	c.Put(ks)
	var se *SuspendedError
	if _, err := RequestReconcile(ctx, c, Kustomizations, "flux-system", "app", "m"); !errors.As(err, &se) {
		t.Fatalf("a suspended Kustomization: %v", err)
	}
	unstructured.SetNestedField(ks.Object, false, "spec", "suspend")
	c.Put(ks)
	at, err := RequestReconcile(ctx, c, Kustomizations, "flux-system", "app", "m")
	if err != nil {
		t.Fatal(err)
	}
	live, _ := c.GetObject(ctx, Kustomizations, "flux-system", "app")
	if live.GetAnnotations()[RequestedAtAnnotation] != at.At {
		t.Fatalf("requestedAt = %q, want %q", live.GetAnnotations()[RequestedAtAnnotation], at.At)
	}

	// The controller: first still on the old request, then failing.
	setStatus := func(handled, ready, reason string) {
		o, _ := c.GetObject(ctx, Kustomizations, "flux-system", "app")
		o.Object["status"] = map[string]any{
			"lastHandledReconcileAt": handled, "observedGeneration": o.GetGeneration(),
			"lastAppliedRevision": "main@sha1:abc",
			"conditions":          []any{map[string]any{"type": "Ready", "status": ready, "reason": reason, "message": "kustomization path not found"}},
		}
		c.Put(o)
	}
	setStatus(at.Before, "True", "ReconciliationSucceeded") // as before the request
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = WaitReconciled(short, c, Kustomizations, "flux-system", "app", at, 5*time.Millisecond, nil)
	var nr *NotReconciledError
	if !errors.As(err, &nr) || nr.Handled || !strings.Contains(err.Error(), "did not act on the reconcile request") {
		t.Fatalf("a request not handled: %v", err)
	}
	setStatus(at.At, "False", "BuildFailed")
	_, err = WaitReconciled(ctx, c, Kustomizations, "flux-system", "app", at, 5*time.Millisecond, nil)
	var fe *FailedError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "kustomization path not found") {
		t.Fatalf("a failed reconcile: %v", err)
	}
	setStatus(at.At, "True", "ReconciliationSucceeded")
	o, err := WaitReconciled(ctx, c, Kustomizations, "flux-system", "app", at, 5*time.Millisecond, nil)
	if err != nil || ReadStatus(o).Revision != "main@sha1:abc" {
		t.Fatalf("ready: %v", err)
	}
}

func TestParseInventoryID(t *testing.T) {
	for id, want := range map[string]InventoryEntry{
		"default_podinfo__Service":                                     {Namespace: "default", Name: "podinfo", Kind: "Service", Version: "v1"},
		"_gitlab-agent-bs__Namespace":                                  {Name: "gitlab-agent-bs", Kind: "Namespace", Version: "v1"},
		"apps_web_apps_Deployment":                                     {Namespace: "apps", Name: "web", Group: "apps", Kind: "Deployment", Version: "v1"},
		"_system__controller__x_rbac.authorization.k8s.io_ClusterRole": {Name: "system:controller:x", Group: "rbac.authorization.k8s.io", Kind: "ClusterRole", Version: "v1"},
	} {
		got, ok := ParseInventoryID(id, "v1")
		if !ok || got != want {
			t.Errorf("ParseInventoryID(%q) = %+v, %v; want %+v", id, got, ok, want)
		}
	}
	for _, bad := range []string{"", "x", "a_b", "__"} {
		if _, ok := ParseInventoryID(bad, "v1"); ok {
			t.Errorf("ParseInventoryID(%q) read", bad)
		}
	}
}

// TestRequestHandledAsFluxReconcileWaits: a request counts as handled once
// lastHandledReconcileAt differs from before it (another trigger's later
// value included), as flux reconcile waits.
func TestRequestHandledAsFluxReconcileWaits(t *testing.T) {
	r := Request{At: "ours", Before: "old"}
	for handled, want := range map[string]bool{"ours": true, "later-webhook": true, "old": false, "": false} {
		if got := r.handledBy(Status{Handled: handled}); got != want {
			t.Errorf("handled %q: %v, want %v", handled, got, want)
		}
	}
}
