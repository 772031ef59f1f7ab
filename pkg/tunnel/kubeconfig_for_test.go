package tunnel

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestKubeconfigFor(t *testing.T) {
	names := Names{Cluster: "gitlab_example_com", User: "gitlab_example_com-42", Context: "gitlab_example_com-infra_agents-prod"}
	base := []string{"get-token", "--gitlab-url", "https://gitlab.example.com", "--agent-id", "42"}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		ci        bool
		tokenFile string
		want      []string
	}{
		{"the user's GITLAB_TOKEN", false, "", base},
		{"a token file, made absolute", false, "secrets/token", append(slices.Clone(base), "--gitlab-token-file", filepath.Join(wd, "secrets", "token"))},
		{"an absolute token file", false, filepath.Join(wd, "t"), append(slices.Clone(base), "--gitlab-token-file", filepath.Join(wd, "t"))},
		{"the job token, never a file", true, "secrets/token", append(slices.Clone(base), "--ci")},
	}
	command, err := PluginCommand("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := KubeconfigFor(AgentAccess{Names: names, GitLabURL: "https://gitlab.example.com", AgentID: 42,
				Server: "https://kas.example.com/k8s-proxy", CA: []byte("PEM"), CI: tt.ci, TokenFile: tt.tokenFile, UseContext: tt.ci})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Args, tt.want) {
				t.Errorf("args %q, want %q", e.Args, tt.want)
			}
			if e.Names != names || e.Server != "https://kas.example.com/k8s-proxy" || string(e.CA) != "PEM" || e.UseContext != tt.ci || e.Command != command {
				t.Errorf("entry %+v", e)
			}
		})
	}
}

// The whole way from an agent to a kubeconfig context: GitLab CLI's names,
// an exec user with nothing secret, every other byte of the file kept, 0600.
func TestKubeconfigForWritten(t *testing.T) {
	names, err := EntryNames("https://gitlab.example.com", "infra/agents", "prod", 42)
	if err != nil {
		t.Fatal(err)
	}
	e, err := KubeconfigFor(AgentAccess{Names: names, GitLabURL: "https://gitlab.example.com", AgentID: 42,
		Server: "https://kas.example.com/k8s-proxy", UseContext: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(handWritten), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := WriteKubeconfig(context.Background(), path, e)
	if err != nil || res.File != path {
		t.Fatalf("%+v %v", res, err)
	}
	got, _ := os.ReadFile(path)
	// Each line of the original is there, in order, but the current context.
	orig := lines([]byte(strings.Replace(handWritten, "current-context: prod   # keep me\n", "", 1)))
	i := 0
	for _, l := range lines(got) {
		if i < len(orig) && l == orig[i] {
			i++
		}
	}
	if i != len(orig) {
		t.Fatalf("original line %d %q is gone:\n%s", i+1, orig[i], got)
	}
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("%v %v", fi, err)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts["gitlab_example_com-infra_agents-prod"]
	user := cfg.AuthInfos["gitlab_example_com-42"]
	if cfg.CurrentContext != "gitlab_example_com-infra_agents-prod" || ctx == nil || ctx.Cluster != "gitlab_example_com" || ctx.AuthInfo != "gitlab_example_com-42" {
		t.Fatalf("context %q: %+v", cfg.CurrentContext, ctx)
	}
	if c := cfg.Clusters["gitlab_example_com"]; c == nil || c.Server != "https://kas.example.com/k8s-proxy" {
		t.Fatalf("cluster %+v", c)
	}
	if user == nil || user.Exec == nil || user.Token != "" || !slices.Equal(user.Exec.Args, e.Args) || user.Exec.InteractiveMode != clientcmdapi.NeverExecInteractiveMode {
		t.Fatalf("user %+v", user)
	}
}

func TestWriteProxyKubeconfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new", "proxy.kubeconfig")
	if err := WriteProxyKubeconfig(path, "http://127.0.0.1:8001", "prod"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("%v %v", fi, err)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const name = "gitlab-agent-proxy-prod"
	// One context, the current one, with no credential: the proxy
	// attaches it.
	if cfg.CurrentContext != name || len(cfg.Contexts) != 1 || len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 {
		t.Fatalf("%+v", cfg)
	}
	if c := cfg.Contexts[name]; c.Cluster != name || c.AuthInfo != name {
		t.Fatalf("context %+v", c)
	}
	if c := cfg.Clusters[name]; c.Server != "http://127.0.0.1:8001" {
		t.Fatalf("cluster %+v", c)
	}
	if u := cfg.AuthInfos[name]; u.Token != "" || u.Exec != nil || u.ClientKeyData != nil {
		t.Fatalf("user %+v", u)
	}

	// The file is the proxy's: written whole over what was there, which
	// keeps its mode.
	old := filepath.Join(dir, "old.kubeconfig")
	if err := os.WriteFile(old, []byte(handWritten), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteProxyKubeconfig(old, "http://[::1]:9000", "dev"); err != nil {
		t.Fatal(err)
	}
	cfg, err = clientcmd.LoadFromFile(old)
	if err != nil || cfg.CurrentContext != "gitlab-agent-proxy-dev" || len(cfg.Contexts) != 1 || cfg.Clusters["gitlab-agent-proxy-dev"].Server != "http://[::1]:9000" {
		t.Fatalf("%+v %v", cfg, err)
	}
	if fi, err := os.Stat(old); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640) {
		t.Fatalf("%v %v", fi, err)
	}

	// The agent's name may come from GitLab (an agent given by ID): it
	// names the context only when it is one GitLab allows.
	bad := filepath.Join(dir, "bad.kubeconfig")
	if err := WriteProxyKubeconfig(bad, "http://127.0.0.1:8001", "prod\x1b]0;x\x07"); err == nil || strings.ContainsAny(err.Error(), "\x1b\x07") {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatal("written")
	}
}
