package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
)

func TestNoKubeconfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	withCluster := filepath.Join(dir, "config")
	if err := os.WriteFile(withCluster, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	server := "https://127.0.0.1:6443"
	for name, tc := range map[string]struct {
		kubeconfig, server, inPod string
		none                      bool
	}{
		"no file":                  {kubeconfig: missing, none: true},
		"a file with a cluster":    {kubeconfig: withCluster},
		"--server given":           {kubeconfig: missing, server: server},
		"inside a Pod":             {kubeconfig: missing, inPod: "10.0.0.1"},
		"KUBECONFIG names nothing": {kubeconfig: "", none: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.kubeconfig)
			t.Setenv("HOME", dir) // no ~/.kube/config
			t.Setenv("KUBERNETES_SERVICE_HOST", tc.inPod)
			f := genericclioptions.NewConfigFlags(true)
			f.APIServer = &tc.server
			err := NoKubeconfig(f)
			var nk *NoKubeconfigError
			if got := errors.As(err, &nk); got != tc.none {
				t.Fatalf("NoKubeconfig: %v; want none=%v", err, tc.none)
			}
			if tc.none && (!strings.Contains(err.Error(), "--kubeconfig") || len(nk.Files) == 0) {
				t.Errorf("error %q, files %v", err, nk.Files)
			}
		})
	}
}
