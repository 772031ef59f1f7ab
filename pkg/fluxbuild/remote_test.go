package fluxbuild

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// No kustomization that asks for something remote is built, and nothing is
// fetched: every reference below points at a server on this machine that
// counts what reaches it.
func TestBuildRefusesRemoteBasesAndFetchesNothing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: remote}\n"))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
	cases := []struct {
		name  string
		files map[string]string
		spec  string
		file  string // the file RemoteError names
		field string
		ref   string
	}{
		{"an http resource", map[string]string{"apps/kustomization.yaml": "resources:\n- a.yaml\n- " + srv.URL + "/cm.yaml\n"}, "path: apps",
			"apps/kustomization.yaml", "resources", srv.URL + "/cm.yaml"},
		{"an https resource", map[string]string{"apps/kustomization.yaml": "resources: [\"https://" + host + "/cm.yaml\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "resources", "https://" + host + "/cm.yaml"},
		{"a git:: base", map[string]string{"apps/kustomization.yaml": "resources: [\"git::" + srv.URL + "/org/repo//base?ref=main\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "resources", "git::" + srv.URL + "/org/repo//base?ref=main"},
		{"a github.com base", map[string]string{"apps/kustomization.yaml": "resources: [\"github.com/org/repo/base?ref=v1\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "resources", "github.com/org/repo/base?ref=v1"},
		{"an scp-like git URL", map[string]string{"apps/kustomization.yaml": "resources: [\"git@" + host + ":org/repo.git\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "resources", "git@" + host + ":org/repo.git"},
		{"an ssh URL in bases", map[string]string{"apps/kustomization.yaml": "bases: [\"ssh://git@" + host + "/org/repo\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "bases", "ssh://git@" + host + "/org/repo"},
		{"a file:// clone of a repository elsewhere on this machine", map[string]string{"apps/kustomization.yaml": "resources: [\"file:///srv/repo\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "resources", "file:///srv/repo"},
		{"a remote component", map[string]string{"apps/kustomization.yaml": "components: [\"" + srv.URL + "/c\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "components", srv.URL + "/c"},
		{"a patch from a URL", map[string]string{"apps/kustomization.yaml": "resources: [a.yaml]\npatches:\n- path: " + srv.URL + "/p.yaml\n", "apps/a.yaml": cm}, "path: apps",
			"apps/kustomization.yaml", "patches[].path", srv.URL + "/p.yaml"},
		{"a JSON 6902 patch from a URL", map[string]string{"apps/kustomization.yaml": "resources: [a.yaml]\npatchesJson6902:\n- path: " + srv.URL + "/p.json\n  target: {kind: ConfigMap, name: a, version: v1}\n", "apps/a.yaml": cm}, "path: apps",
			"apps/kustomization.yaml", "patchesJson6902[].path", srv.URL + "/p.json"},
		{"a strategic merge patch from a URL", map[string]string{"apps/kustomization.yaml": "resources: [a.yaml]\npatchesStrategicMerge: [\"" + srv.URL + "/p.yaml\"]\n", "apps/a.yaml": cm}, "path: apps",
			"apps/kustomization.yaml", "patchesStrategicMerge", srv.URL + "/p.yaml"},
		{"a generator's file from a URL", map[string]string{"apps/kustomization.yaml": "configMapGenerator:\n- name: g\n  files: [\"key=" + srv.URL + "/f\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "configMapGenerator[].files", "key=" + srv.URL + "/f"},
		{"a generator's env file from a URL", map[string]string{"apps/kustomization.yaml": "secretGenerator:\n- name: g\n  envs: [\"" + srv.URL + "/e.env\"]\n"}, "path: apps",
			"apps/kustomization.yaml", "secretGenerator[].envs", srv.URL + "/e.env"},
		{"an OpenAPI schema from a URL", map[string]string{"apps/kustomization.yaml": "resources: [a.yaml]\nopenapi:\n  path: " + srv.URL + "/schema.json\n", "apps/a.yaml": cm}, "path: apps",
			"apps/kustomization.yaml", "openapi.path", srv.URL + "/schema.json"},
		{"replacements from a URL", map[string]string{"apps/kustomization.yaml": "resources: [a.yaml]\nreplacements:\n- path: " + srv.URL + "/r.yaml\n", "apps/a.yaml": cm}, "path: apps",
			"apps/kustomization.yaml", "replacements[].path", srv.URL + "/r.yaml"},
		{"a transformer configuration that loads a patch from a URL", map[string]string{
			"apps/kustomization.yaml": "resources: [a.yaml]\ntransformers: [t.yaml]\n", "apps/a.yaml": cm,
			"apps/t.yaml": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: t}\npath: " + srv.URL + "/p.yaml\ntarget: {kind: ConfigMap}\n"}, "path: apps",
			"apps/t.yaml", "path", srv.URL + "/p.yaml"},
		{"a remote base in a local base", map[string]string{
			"apps/prod/kustomization.yaml": "resources: [../base]\n",
			"apps/base/kustomization.yaml": "resources: [a.yaml, \"" + srv.URL + "/cm.yaml\"]\n", "apps/base/a.yaml": cm}, "path: apps/prod",
			"apps/base/kustomization.yaml", "resources", srv.URL + "/cm.yaml"},
		{"a remote base in a subdirectory of a path without kustomization.yaml", map[string]string{
			"apps/a.yaml":                 cm,
			"apps/sub/kustomization.yaml": "resources: [\"" + srv.URL + "/cm.yaml\"]\n"}, "path: apps",
			"apps/sub/kustomization.yaml", "resources", srv.URL + "/cm.yaml"},
		{"a remote base in a local component", map[string]string{
			"apps/kustomization.yaml": "resources: [a.yaml]\n", "apps/a.yaml": cm,
			"comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [\"" + srv.URL + "/cm.yaml\"]\n"}, "path: apps\ncomponents: [../comp]",
			"comp/kustomization.yaml", "resources", srv.URL + "/cm.yaml"},
		{"a Kustomization file named Kustomization", map[string]string{"apps/Kustomization": "resources: [\"" + srv.URL + "/cm.yaml\"]\n"}, "path: apps",
			"apps/Kustomization", "resources", srv.URL + "/cm.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), tree(t, tc.files), kustomization(t, tc.spec), nil)
			var re *RemoteError
			if !errors.As(err, &re) || re.File != tc.file || re.Field != tc.field || re.Ref != tc.ref {
				t.Fatalf("got %v (%+v), want %s %s %s", err, re, tc.file, tc.field, tc.ref)
			}
			if !strings.Contains(err.Error(), tc.ref) || !strings.Contains(err.Error(), "not fetched") {
				t.Errorf("the error does not name it: %v", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestIsRemote(t *testing.T) {
	for ref, want := range map[string]bool{
		"../base":                      false,
		"base":                         false,
		"./a.yaml":                     false,
		"key=files/a.txt":              false,
		"github.com-like/dir":          false,
		"GITHUB.COM/org/repo":          true,
		"https://example.com/a.yaml":   true,
		"HTTP://example.com/a.yaml":    true,
		"git::https://example.com/r":   true,
		"gh:org/repo":                  true,
		"git@gitlab.com:group/repo":    true,
		"oci://registry/chart":         true,
		" https://example.com/a.yaml ": true,
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: https://x}\n": false,
	} {
		if got := IsRemote(ref); got != want {
			t.Errorf("IsRemote(%q) = %v, want %v", ref, got, want)
		}
	}
}
