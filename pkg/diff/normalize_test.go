package diff

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

func TestNormalizeDropsBookkeeping(t *testing.T) {
	o := obj(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "9", "generation": int64(2),
			"creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": []any{map[string]any{}}, "annotations": map[string]any{},
		},
		"data":   map[string]any{"k": "v"},
		"status": map[string]any{"x": "y"},
	})
	got := normalizer{}.normalize(o, "s")
	want := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "a", "namespace": "n"}, "data": map[string]any{"k": "v"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if got := (normalizer{showStatus: true}).normalize(o, "s"); got["status"] == nil {
		t.Error("--show-status dropped status")
	}
}

// TestMaskKey: the key is the user's, 0600, the same for every run; one
// that others could read, or that is not a key, is replaced.
func TestMaskKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kubectl-gitlab-agent")
	k := MaskKey(dir)
	fi, err := os.Stat(filepath.Join(dir, maskKeyFile))
	if len(k) != 32 || err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key %d bytes, file %v %v", len(k), fi, err)
	}
	if again := MaskKey(dir); !bytes.Equal(again, k) {
		t.Error("a second run has another key")
	}
	if err := os.Chmod(filepath.Join(dir, maskKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if other := MaskKey(dir); bytes.Equal(other, k) || len(other) != 32 {
		t.Error("a key others can read is still used")
	}
	if err := os.WriteFile(filepath.Join(dir, maskKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if other := MaskKey(dir); len(other) != 32 {
		t.Errorf("a broken key file gave %d bytes", len(other))
	}
	if k := MaskKey("/proc/no-such-dir"); k != nil {
		t.Error("a key that could not be kept")
	}
	// Another key, other hashes.
	sec := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s"}, "stringData": map[string]any{"pw": "hunter2"}}}
	a := toYAML(normalizer{key: k}.normalize(sec, "uid"))
	b := toYAML(normalizer{key: MaskKey(t.TempDir())}.normalize(sec, "uid"))
	if a == b || strings.Contains(a+b, "hunter2") {
		t.Errorf("two keys, the same hashes:\n%s\n%s", a, b)
	}
}

func TestSecretsMasked(t *testing.T) {
	secret := func(pw string) *unstructured.Unstructured {
		return obj(map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata":   map[string]any{"name": "s", "annotations": map[string]any{lastApplied: `{"data":{"pw":"` + pw + `"}}`}},
			"data":       map[string]any{"pw": base64.StdEncoding.EncodeToString([]byte(pw)), "user": base64.StdEncoding.EncodeToString([]byte("admin"))},
			"stringData": map[string]any{"pw": pw},
		})
	}
	n := normalizer{}
	a, b := toYAML(n.normalize(secret("hunter2"), "uid-1")), toYAML(n.normalize(secret("hunter3"), "uid-1"))
	for _, s := range []string{a, b} {
		if strings.Contains(s, "hunter") || strings.Contains(s, "aHVudGVy") || strings.Contains(s, "YWRtaW4") {
			t.Fatalf("a secret value shows:\n%s", s)
		}
	}
	if a == b {
		t.Error("a changed value hashes the same")
	}
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	userLine := func(lines []string) string {
		for _, l := range lines {
			if strings.Contains(l, "user:") {
				return l
			}
		}
		return ""
	}
	if userLine(la) == "" || userLine(la) != userLine(lb) {
		t.Error("an unchanged key hashes differently")
	}
	if again := toYAML(n.normalize(secret("hunter2"), "uid-1")); again != a {
		t.Error("the same value hashes differently within a run")
	}
	// What is printed (the object's name, the key) does not let the hash
	// be recomputed, so a guess cannot be tested offline.
	guess := hmac.New(sha256.New, []byte("kubectl-gitlab-agent diff\x00uid-1"))
	guess.Write([]byte("pw\x00hunter2"))
	if strings.Contains(a, hex.EncodeToString(guess.Sum(nil))[:10]) {
		t.Error("the hash is keyed by what is printed only")
	}
	if other := toYAML(n.normalize(secret("hunter2"), "uid-2")); other == a {
		t.Error("the hash does not depend on the object")
	}
	if shown := toYAML(normalizer{showSecrets: true}.normalize(secret("hunter2"), "uid-1")); !strings.Contains(shown, "hunter2") {
		t.Error("--show-secrets hid the value")
	}
	// data and stringData with the same value hash alike.
	d := n.normalize(secret("x"), "u")
	if d["data"].(map[string]any)["pw"] != d["stringData"].(map[string]any)["pw"] {
		t.Error("data and stringData of one value hash differently")
	}
}

func TestIgnoreRules(t *testing.T) {
	o := func() *unstructured.Unstructured {
		return obj(map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "d", "annotations": map[string]any{"example.com/rev": "3", "keep": "1"}},
			"spec": map[string]any{"replicas": int64(3), "template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "a", "image": "x:1"}, map[string]any{"name": "b", "image": "y:1"},
			}}}},
		})
	}
	for _, tt := range []struct {
		rule  string
		check func(m map[string]any) bool
	}{
		{"Deployment:.spec.replicas", func(m map[string]any) bool { _, ok := m["spec"].(map[string]any)["replicas"]; return !ok }},
		{"*:.metadata.annotations['example.com/rev']", func(m map[string]any) bool {
			a := m["metadata"].(map[string]any)["annotations"].(map[string]any)
			_, gone := a["example.com/rev"]
			return !gone && a["keep"] == "1"
		}},
		{"Deployment:.spec.template.spec.containers[*].image", func(m map[string]any) bool {
			cs := m["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			return cs[0].(map[string]any)["image"] == nil && cs[1].(map[string]any)["image"] == nil && cs[1].(map[string]any)["name"] == "b"
		}},
		{"Deployment:.spec.template.spec.containers[1].image", func(m map[string]any) bool {
			cs := m["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			return cs[0].(map[string]any)["image"] == "x:1" && cs[1].(map[string]any)["image"] == nil
		}},
		{"ConfigMap:.spec.replicas", func(m map[string]any) bool { return m["spec"].(map[string]any)["replicas"] == int64(3) }},
	} {
		r, err := ParseIgnoreRule(tt.rule)
		if err != nil {
			t.Fatalf("%s: %v", tt.rule, err)
		}
		if got := (normalizer{ignore: []IgnoreRule{r}}).normalize(o(), "s"); !tt.check(got) {
			t.Errorf("%s: got %v", tt.rule, got)
		}
	}
	for _, bad := range []string{"", "Deployment", ":.a", "Deployment:spec", "Deployment:.a[x]", "D:.a['b"} {
		if _, err := ParseIgnoreRule(bad); err == nil {
			t.Errorf("ParseIgnoreRule(%q) succeeded", bad)
		}
	}
}

func TestChangedPaths(t *testing.T) {
	a := map[string]any{"data": map[string]any{"x": "1", "y": "2"}, "metadata": map[string]any{"labels": map[string]any{"a.b/c": "1"}}, "list": []any{"a", "b"}}
	b := map[string]any{"data": map[string]any{"x": "1", "z": "3"}, "metadata": map[string]any{"labels": map[string]any{"a.b/c": "2"}}, "list": []any{"a", "c"}}
	want := []string{".data.y", ".data.z", ".list[1]", ".metadata.labels['a.b/c']"}
	if got := changedPaths(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzParseIgnoreRule(f *testing.F) {
	for _, s := range []string{"Deployment:.spec.replicas", "*:.metadata.annotations['a/b']", "X:[0][*].a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseIgnoreRule(s)
		if err != nil {
			return
		}
		removePath(map[string]any{"spec": map[string]any{"replicas": 1}, "a": []any{map[string]any{"b": 1}}}, r.Path)
	})
}
