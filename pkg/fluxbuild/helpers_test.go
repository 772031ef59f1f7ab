package fluxbuild

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// tree writes files (path → content) under a new directory and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// snapshot is every file under dir with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kustomization is a Flux Kustomization apps/flux-system with spec.
func kustomization(t *testing.T, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
		"kind":       "Kustomization",
		"metadata":   map[string]any{"name": "apps", "namespace": "flux-system"},
		"spec":       s,
	}}
}

// objects parses multi-document YAML into objects.
func objects(t *testing.T, docs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var o map[string]any
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatalf("%v in\n%s", err, d)
		}
		out = append(out, o)
	}
	return out
}

// owned adds what kustomize-controller adds to every object (the owner
// labels of apps/flux-system, and the null creationTimestamp that Flux's
// normalisation leaves), so that expectations show only what a case is
// about.
func owned(objs []map[string]any) []map[string]any {
	for _, o := range objs {
		md, _ := o["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			o["metadata"] = md
		}
		labels, _ := md["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
			md["labels"] = labels
		}
		labels[NameLabel] = "apps"
		labels[NamespaceLabel] = "flux-system"
		if _, ok := md["creationTimestamp"]; !ok {
			md["creationTimestamp"] = nil
		}
	}
	return objs
}

// asYAML prints objects in a stable order, to compare and to show.
func asYAML(t *testing.T, objs []map[string]any) string {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	sort.Strings(docs)
	return strings.Join(docs, "---\n")
}

func unstructuredMaps(objs []*unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		out = append(out, o.Object)
	}
	return out
}

// fakeVars is a VarSource in memory that counts its reads.
type fakeVars struct {
	mu         sync.Mutex
	configMaps map[string]map[string]string // namespace/name → data
	secrets    map[string]map[string][]byte
	reads      map[string]int // "ConfigMap/ns/name" → reads
	err        error
}

func (f *fakeVars) ConfigMap(_ context.Context, ns, name string) (map[string]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("ConfigMap/" + ns + "/" + name)
	if f.err != nil {
		return nil, false, f.err
	}
	d, ok := f.configMaps[ns+"/"+name]
	return d, ok, nil
}

func (f *fakeVars) Secret(_ context.Context, ns, name string) (map[string][]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("Secret/" + ns + "/" + name)
	if f.err != nil {
		return nil, false, f.err
	}
	d, ok := f.secrets[ns+"/"+name]
	return d, ok, nil
}

func (f *fakeVars) count(k string) {
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	f.reads[k]++
}
