package cmd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// The in-process commands keep tokens as get-token does, in the OS keyring
// by default: never the developer's. On a bus nothing listens on every
// Secret Service call fails at once, so these tests see the file fallback;
// the keyring itself is tested against a Secret Service of its own
// (pkg/tunnel, test/e2e).
func init() {
	_ = os.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/kubectl-gitlab-agent-tests/bus")
}

// kubeconfig writes --cache-mode into get-token's arguments when it is not
// the default, and get-token honours it: file asks no keyring and says
// nothing; the default, with no keyring answering, says so once.
func TestCacheModeFromKubeconfigToGetToken(t *testing.T) {
	w := newInProcess(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	a := w.gl.AddAgent(w.project, "prod", w.user)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = w.gl.URL + "/-/kubernetes-agent/k8s-proxy" })
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{nil, ""},
		{[]string{"--cache-mode", "keyring"}, ""},
		{[]string{"--cache-mode", "file"}, " --cache-mode file"},
	} {
		kc := filepath.Join(t.TempDir(), "config")
		code, _, errOut := w.run(t, append([]string{"kubeconfig", "prod", "--kubeconfig", kc}, c.flags...)...)
		if code != 0 {
			t.Fatalf("kubeconfig %v: exit %d, %s", c.flags, code, errOut)
		}
		cfg, err := clientcmd.LoadFromFile(kc)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range cfg.AuthInfos {
			args := strings.Join(u.Exec.Args, " ")
			if !strings.HasSuffix(args, "--agent-id "+strconv.FormatInt(a.ID, 10)+" --gitlab-token-file "+w.tokenFile+c.want) {
				t.Errorf("kubeconfig %v: get-token %s", c.flags, args)
			}
		}
	}

	get := []string{"get-token", "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--agent-id", strconv.FormatInt(a.ID, 10)}
	code, _, errOut := w.runBare(t, append(get, "--cache-mode", "file")...)
	if code != 0 || errOut != "" {
		t.Fatalf("get-token --cache-mode file: exit %d, %q", code, errOut)
	}
	code, out, errOut := w.runBare(t, "token-cache", "list", "--cache-mode", "file")
	if code != 0 || !strings.Contains(out, "SECRET IN") || !strings.Contains(out, " file") {
		t.Errorf("token-cache list: exit %d, %q, %s", code, out, errOut)
	}
	// The default with no keyring (this test's bus answers nobody): the
	// file, said once for the cache directory.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for i := range 3 {
		code, _, errOut := w.runBare(t, get...)
		said := strings.Contains(errOut, "no OS keyring answered") && strings.Contains(errOut, "(0600) instead")
		if code != 0 || said != (i == 0) {
			t.Fatalf("get-token call %d: exit %d, %q", i, code, errOut)
		}
	}
}
