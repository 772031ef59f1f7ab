package flux

import (
	"net/url"
	"path"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Repo is the git repository a GitRepository must fetch: a project's
// HTTPS clone URL and the branch to follow.
type Repo struct {
	// URL is the project's http_url_to_repo.
	URL    string
	Branch string
}

// repoKey is a clone URL reduced to what names the repository: the host
// (case-insensitive, default port dropped) and the path without ".git" or a
// trailing slash. "" when the URL is not one this package compares.
func repoKey(raw string) (host, p string) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", ""
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	default:
		return "", ""
	}
	h := strings.ToLower(u.Hostname())
	p = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	p = strings.ToLower(strings.TrimPrefix(p, "/"))
	if h == "" || p == "" || strings.Contains(p, "..") {
		return "", ""
	}
	return h, p
}

// SameRepository says whether a GitRepository's url names the project whose
// HTTPS clone URL is projectURL: same host, same project path (GitLab's
// paths are case-insensitive), over HTTPS, or over SSH as
// 'flux bootstrap gitlab' sets it up. Another host, another project, or a
// URL that cannot be read is never the same.
func SameRepository(fluxURL, projectURL string) bool {
	h1, p1 := repoKey(fluxURL)
	h2, p2 := repoKey(projectURL)
	if h1 == "" || h2 == "" {
		return false
	}
	u1, _ := url.Parse(fluxURL)
	u2, _ := url.Parse(projectURL)
	if u1.Scheme != "ssh" && u1.Scheme != u2.Scheme {
		return false // http and https are not the same endpoint
	}
	if u1.Scheme != "ssh" && u1.Port() != u2.Port() {
		return false
	}
	return h1 == h2 && p1 == p2
}

// Branch is the branch a GitRepository follows: spec.ref.branch, "master"
// when it names no ref at all (Flux's default); "" when it follows a tag,
// a semver range, a name or a commit.
func Branch(gr *unstructured.Unstructured) string {
	ref, found, _ := unstructured.NestedMap(gr.Object, "spec", "ref")
	if !found || len(ref) == 0 {
		return "master"
	}
	for _, k := range []string{"commit", "name", "semver", "tag"} {
		if v, _ := ref[k].(string); v != "" {
			return ""
		}
	}
	b, _ := ref["branch"].(string)
	return b
}

// FindGitRepository is the GitRepository among grs that fetches r: the
// project's repository, following r's branch. Of several, the one in ns
// first, then by namespace and name, so that the answer is stable. nil: none.
func FindGitRepository(grs []*unstructured.Unstructured, r Repo, ns string) *unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, gr := range grs {
		u, _, _ := unstructured.NestedString(gr.Object, "spec", "url")
		if SameRepository(u, r.URL) && Branch(gr) == r.Branch {
			found = append(found, gr)
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if (a.GetNamespace() == ns) != (b.GetNamespace() == ns) {
			return a.GetNamespace() == ns
		}
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return a.GetName() < b.GetName()
	})
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// CleanPath is a Kustomization's spec.path as a repository path: no "./"
// prefix, no trailing slash; "" is the repository's root.
func CleanPath(p string) string {
	p = path.Clean("/" + strings.TrimSpace(p))
	return strings.TrimPrefix(p, "/")
}

// Under says whether dir is parent or inside it (repository paths, as
// CleanPath gives them).
func Under(dir, parent string) bool {
	return parent == "" || dir == parent || strings.HasPrefix(dir, parent+"/")
}

// SourceOf says whether a Kustomization builds from the GitRepository
// ns/name (its sourceRef's namespace defaults to its own).
func SourceOf(ks *unstructured.Unstructured, ns, name string) bool {
	ref, _, _ := unstructured.NestedStringMap(ks.Object, "spec", "sourceRef")
	refNS := ref["namespace"]
	if refNS == "" {
		refNS = ks.GetNamespace()
	}
	return ref["kind"] == "GitRepository" && ref["name"] == name && refNS == ns
}

// CoveringKustomizations are the Kustomizations of the GitRepository ns/name
// whose path is dir or a directory above it, other than skip (namespace/name),
// sorted by namespace and name.
func CoveringKustomizations(kss []*unstructured.Unstructured, ns, name, dir, skip string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, ks := range kss {
		if ks.GetNamespace()+"/"+ks.GetName() == skip || !SourceOf(ks, ns, name) {
			continue
		}
		p, _, _ := unstructured.NestedString(ks.Object, "spec", "path")
		if Under(dir, CleanPath(p)) {
			out = append(out, ks)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].GetNamespace()+"/"+out[i].GetName() < out[j].GetNamespace()+"/"+out[j].GetName()
	})
	return out
}

// Between are the directories a Kustomization at parent builds through to
// reach dir, parent itself included and dir excluded: where a
// kustomization.yaml would stop Flux from finding dir on its own.
func Between(parent, dir string) []string {
	if !Under(dir, parent) || dir == parent {
		return nil
	}
	out := []string{parent}
	rest := strings.TrimPrefix(strings.TrimPrefix(dir, parent), "/")
	parts := strings.Split(rest, "/")
	cur := parent
	for _, p := range parts[:len(parts)-1] {
		cur = path.Join(cur, p)
		out = append(out, cur)
	}
	return out
}

// NewGitRepository is a GitRepository that fetches r with the basic-auth
// Secret secretName (username, password) in ns.
func NewGitRepository(ns, name string, r Repo, secretName string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": SourceAPIVersion,
		"kind":       "GitRepository",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"url":       r.URL,
			"ref":       map[string]any{"branch": r.Branch},
			"interval":  "5m0s",
			"timeout":   "60s",
			"secretRef": map[string]any{"name": secretName},
		},
	}}
	u.SetLabels(labels)
	return u
}

// NewKustomization is a Kustomization that applies dir of the
// GitRepository srcNS/src, pruning what leaves it and waiting for what it
// applies to be ready.
func NewKustomization(ns, name, srcNS, src, dir string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": KustomizeAPIVersion,
		"kind":       "Kustomization",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"interval": "10m0s",
			"path":     "./" + dir,
			"prune":    true,
			"wait":     true,
			"timeout":  "5m0s",
			"sourceRef": map[string]any{
				"kind":      "GitRepository",
				"name":      src,
				"namespace": srcNS,
			},
		},
	}}
	u.SetLabels(labels)
	return u
}

// ResourcePath is GitLab's flux_resource_path for a Kustomization:
// kustomize.toolkit.fluxcd.io/v1/namespaces/NS/kustomizations/NAME.
func ResourcePath(ns, name string) string {
	return KustomizeAPIVersion + "/namespaces/" + ns + "/kustomizations/" + name
}
