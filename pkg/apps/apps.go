// Package apps is Argo CD's application view of what Flux deploys: each
// Kustomization (and HelmRelease) as an application with its source, the
// revision applied, whether it is in sync with its source, and its health;
// and the actions on one: reconcile, suspend, resume, history, rollback.
// It reads and drives Flux's objects through pkg/flux's Cluster and GitLab
// through pkg/gitlab; it knows nothing of cobra or of printing.
package apps

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitremote"
)

// HelmReleases are helm-controller's applications.
var HelmReleases = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}

// The kinds of application.
const (
	KindKustomization = "Kustomization"
	KindHelmRelease   = "HelmRelease"
)

// Sync states, as Argo CD names them.
const (
	Synced    = "Synced"
	OutOfSync = "OutOfSync"
	Unknown   = "Unknown"
)

// Health states.
const (
	Healthy     = "Healthy"
	Progressing = "Progressing"
	Degraded    = "Degraded"
	Suspended   = "Suspended"
)

// App is one application.
type App struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	// Source is Kind/namespace/name of its source.
	Source string `json:"source"`
	// Project is the GitLab project the source fetches ("" when its URL is
	// not one of the GitLab asked).
	Project string `json:"project"`
	// Revision is the revision Flux applied last; SourceRevision the
	// source's current artifact.
	Revision       string `json:"revision"`
	SourceRevision string `json:"sourceRevision"`
	Sync           string `json:"sync"`
	Health         string `json:"health"`
	Suspended      bool   `json:"suspended"`
	// LastReconcile is when Flux last reconciled it (the Ready
	// condition's last transition, or its last handled request).
	LastReconcile *time.Time `json:"lastReconcile"`
	// Drifted counts the objects whose live state differs from what the
	// revision builds; nil when not compared.
	Drifted *int `json:"drifted"`
	// Message is Flux's Ready message when the app is not healthy, or why
	// the comparison could not be made.
	Message string `json:"message,omitempty"`

	obj    *unstructured.Unstructured
	source *unstructured.Unstructured
}

// Object is the Flux object of the app.
func (a *App) Object() *unstructured.Unstructured { return a.obj }

// SourceObject is its source (nil when it does not exist).
func (a *App) SourceObject() *unstructured.Unstructured { return a.source }

// Key is namespace/name.
func (a *App) Key() string { return a.Namespace + "/" + a.Name }

// Env is what the app actions work with.
type Env struct {
	Flux flux.Cluster
	// GitLabURL is the GitLab instance whose projects a source URL may
	// name ("" none).
	GitLabURL string
	// Poll is how often waits look again (default 500 ms).
	Poll time.Duration
}

func (e Env) poll() time.Duration {
	if e.Poll > 0 {
		return e.Poll
	}
	return 500 * time.Millisecond
}

// List reads every Kustomization and HelmRelease in ns ("" all
// namespaces), sorted by namespace, kind and name, with Flux's own view of
// their sync and health. Comparing live objects is Compare's.
func List(ctx context.Context, e Env, ns string) ([]*App, error) {
	kss, err := e.Flux.ListObjects(ctx, flux.Kustomizations, ns)
	if err != nil {
		return nil, fmt.Errorf("listing Flux Kustomizations: %w", err)
	}
	hrs, err := e.Flux.ListObjects(ctx, HelmReleases, ns)
	if err != nil {
		hrs = nil // helm-controller is optional
	}
	sources := map[string]*unstructured.Unstructured{}
	var out []*App
	for _, o := range append(kss, hrs...) {
		a := fromObject(o)
		if a.Source != "" {
			src, ok := sources[a.Source]
			if !ok {
				src, err = sourceOf(ctx, e.Flux, a.Source)
				if err != nil {
					return nil, err
				}
				sources[a.Source] = src
			}
			a.setSource(src, e.GitLabURL)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		if out[i].Kind != out[j].Kind {
			return out[i].Kind > out[j].Kind // Kustomizations first
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// NotFoundError is an app that does not exist.
type NotFoundError struct{ Namespace, Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no Flux Kustomization %s/%s: list the applications with 'kubectl gitlab-agent apps list -A'", e.Namespace, e.Name)
}

// Get reads one app (a Kustomization; a HelmRelease of that name when there
// is no Kustomization) with its source.
func Get(ctx context.Context, e Env, ns, name string) (*App, error) {
	o, err := e.Flux.GetObject(ctx, flux.Kustomizations, ns, name)
	if err != nil {
		return nil, fmt.Errorf("reading Kustomization %s/%s: %w", ns, name, err)
	}
	if o == nil {
		if o, err = e.Flux.GetObject(ctx, HelmReleases, ns, name); err != nil || o == nil {
			return nil, &NotFoundError{Namespace: ns, Name: name}
		}
	}
	a := fromObject(o)
	if a.Source != "" {
		src, err := sourceOf(ctx, e.Flux, a.Source)
		if err != nil {
			return nil, err
		}
		a.setSource(src, e.GitLabURL)
	}
	return a, nil
}

// fromObject reads an app from its Flux object.
func fromObject(o *unstructured.Unstructured) *App {
	a := &App{Namespace: o.GetNamespace(), Name: o.GetName(), Kind: o.GetKind(), obj: o}
	st := flux.ReadStatus(o)
	a.Suspended = st.Suspended
	a.Revision = st.Revision
	if a.Kind == KindHelmRelease {
		a.Revision, _, _ = unstructured.NestedString(o.Object, "status", "lastAttemptedRevision")
	}
	a.Source = sourceRef(o)
	a.Health = health(st)
	if c, ok := st.Condition("Ready"); ok {
		if c.Status != "True" {
			a.Message = c.Message
		}
	}
	a.LastReconcile = lastReconcile(o)
	a.Sync = Unknown
	return a
}

// sourceRef is Kind/namespace/name of o's source: a Kustomization's
// spec.sourceRef, a HelmRelease's chart source or chartRef.
func sourceRef(o *unstructured.Unstructured) string {
	var ref map[string]string
	if o.GetKind() == KindHelmRelease {
		ref, _, _ = unstructured.NestedStringMap(o.Object, "spec", "chartRef")
		if len(ref) == 0 {
			ref, _, _ = unstructured.NestedStringMap(o.Object, "spec", "chart", "spec", "sourceRef")
		}
	} else {
		ref, _, _ = unstructured.NestedStringMap(o.Object, "spec", "sourceRef")
	}
	if ref["kind"] == "" || ref["name"] == "" {
		return ""
	}
	ns := ref["namespace"]
	if ns == "" {
		ns = o.GetNamespace()
	}
	return ref["kind"] + "/" + ns + "/" + ref["name"]
}

// sourceGVR maps a source kind to its resource.
func sourceGVR(kind string) (schema.GroupVersionResource, bool) {
	switch kind {
	case "GitRepository":
		return flux.GitRepositories, true
	case "OCIRepository":
		return schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "ocirepositories"}, true
	case "Bucket":
		return schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "buckets"}, true
	case "HelmRepository":
		return schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmrepositories"}, true
	case "HelmChart":
		return schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmcharts"}, true
	}
	return schema.GroupVersionResource{}, false
}

// sourceOf reads the source Kind/namespace/name; nil when it does not
// exist or is of a kind this package does not know.
func sourceOf(ctx context.Context, c flux.Cluster, ref string) (*unstructured.Unstructured, error) {
	parts := strings.SplitN(ref, "/", 3)
	gvr, ok := sourceGVR(parts[0])
	if !ok || len(parts) != 3 {
		return nil, nil
	}
	src, err := c.GetObject(ctx, gvr, parts[1], parts[2])
	if err != nil {
		return nil, fmt.Errorf("reading source %s: %w", ref, err)
	}
	return src, nil
}

// setSource fills what the source tells: its revision, its GitLab
// project, and Flux's view of sync.
func (a *App) setSource(src *unstructured.Unstructured, gitlabURL string) {
	a.source = src
	if src == nil {
		a.Message = firstNonEmpty(a.Message, "its source "+a.Source+" does not exist")
		return
	}
	st := flux.ReadStatus(src)
	a.SourceRevision = st.Revision
	if src.GetKind() == "GitRepository" {
		u, _, _ := unstructured.NestedString(src.Object, "spec", "url")
		a.Project = ProjectOf(u, gitlabURL)
	}
	if a.Kind == KindKustomization {
		a.Sync = syncOf(a.Revision, a.SourceRevision)
	} else if a.Revision != "" && a.Health == Healthy {
		a.Sync = Synced // helm-controller: Ready at the attempted chart version
	}
}

// ProjectOf is the GitLab project path a git URL names on the GitLab at
// gitlabURL (same host); "" when it names none.
func ProjectOf(gitURL, gitlabURL string) string {
	g, err := url.Parse(gitlabURL)
	if gitlabURL == "" || err != nil || g.Hostname() == "" {
		return ""
	}
	r, ok := gitremote.ParseRemote(gitURL)
	if !ok || !strings.EqualFold(r.Host, g.Hostname()) {
		return ""
	}
	// Over HTTP(S), the same port too: another port is another server.
	if r.Web() && withDefaultPort(r.Scheme, r.Port) != withDefaultPort(g.Scheme, g.Port()) {
		return ""
	}
	p := r.Path
	// A GitLab under a path (https://example.com/gitlab) serves projects
	// below it.
	if base := strings.Trim(g.Path, "/"); base != "" {
		if p, ok = strings.CutPrefix(p, base+"/"); !ok {
			return ""
		}
	}
	if !strings.Contains(p, "/") || strings.Contains(p, "..") {
		return ""
	}
	return p
}

// health is Argo CD's health from Flux's conditions.
func health(st flux.Status) string {
	if st.Suspended {
		return Suspended
	}
	ready, ok := st.Condition("Ready")
	switch {
	case ok && ready.Status == "True":
		return Healthy
	case ok && ready.Status == "False":
		if rec, ok := st.Condition("Reconciling"); ok && rec.Status == "True" {
			return Progressing
		}
		return Degraded
	}
	return Progressing
}

// lastReconcile is when the Ready condition last changed, or the last
// reconcile request handled, whichever is later.
func lastReconcile(o *unstructured.Unstructured) *time.Time {
	var last time.Time
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Ready" {
			continue
		}
		if s, _ := m["lastTransitionTime"].(string); s != "" {
			if t, err := time.Parse(time.RFC3339, s); err == nil && t.After(last) {
				last = t
			}
		}
	}
	if h, _, _ := unstructured.NestedString(o.Object, "status", "lastHandledReconcileAt"); h != "" {
		if t, err := time.Parse(time.RFC3339Nano, h); err == nil && t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return nil
	}
	return &last
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// syncOf is Flux's view of sync: the applied revision is the source's
// current one.
func syncOf(applied, source string) string {
	switch {
	case source == "" || applied == "":
		return Unknown
	case applied == source:
		return Synced
	}
	return OutOfSync
}

// withDefaultPort is port, or scheme's default when it is "".
func withDefaultPort(scheme, port string) string {
	if port != "" {
		return port
	}
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}
