package tunnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// handWritten is a kubeconfig as people keep them: comments, lists indented
// by two, quoting, a flow-style empty map, an odd order (test/e2e uses the
// file too).
var handWritten = func() string {
	b, err := os.ReadFile("testdata/hand-written.kubeconfig")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func entry(command string) Entry {
	return Entry{
		Names:   Names{Cluster: "gitlab_example_com", User: "gitlab_example_com-42", Context: "gitlab_example_com-infra_agents-prod"},
		Server:  "https://kas.example.com/k8s-proxy",
		Command: command,
		Args:    []string{"get-token", "--gitlab-url", "https://gitlab.example.com", "--agent-id", "42"},
	}
}

func TestWriteKubeconfigKeepsEveryOtherByte(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(handWritten), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKubeconfig(context.Background(), path, entry("/usr/local/bin/kubectl-gitlab_agent")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	// Every line of the original is still there, in order; what was added
	// is only the three new items.
	orig := lines([]byte(handWritten))
	var added []string
	i := 0
	for _, l := range lines(got) {
		if i < len(orig) && l == orig[i] {
			i++
			continue
		}
		added = append(added, l)
	}
	if i != len(orig) {
		t.Fatalf("original line %d %q is gone:\n%s", i+1, orig[i], got)
	}
	joined := strings.Join(added, "")
	for _, want := range []string{"  - cluster:\n", "    name: gitlab_example_com\n", "  - name: gitlab_example_com-42\n", "  - context:\n", "      command: /usr/local/bin/kubectl-gitlab_agent\n"} {
		if !strings.Contains(joined, want) {
			t.Errorf("added lines lack %q:\n%s", want, joined)
		}
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "prod" || cfg.Contexts["gitlab_example_com-infra_agents-prod"].AuthInfo != "gitlab_example_com-42" || cfg.AuthInfos["prod-admin"].Token != "s3cr3t-token" {
		t.Fatalf("%+v", cfg)
	}

	// Again, now replacing its own items and switching the context: the
	// other lines still stay, the current-context line changes alone.
	e := entry("/opt/bin/kubectl-gitlab_agent")
	e.UseContext = true
	if _, err := WriteKubeconfig(context.Background(), path, e); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if strings.Count(string(again), "name: gitlab_example_com-42") != 1 || !strings.Contains(string(again), "command: /opt/bin/kubectl-gitlab_agent") || strings.Contains(string(again), "/usr/local/bin") {
		t.Fatalf("replace:\n%s", again)
	}
	want := strings.Replace(string(got), "current-context: prod   # keep me\n", "current-context: gitlab_example_com-infra_agents-prod\n", 1)
	want = strings.Replace(want, "/usr/local/bin/kubectl-gitlab_agent", "/opt/bin/kubectl-gitlab_agent", 1)
	if string(again) != want {
		t.Fatalf("second write changed more than the command and the current context:\n--- want\n%s\n--- got\n%s", want, again)
	}
}

func TestWriteKubeconfigNewAndJSONFiles(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new", "config")
	if _, err := WriteKubeconfig(context.Background(), fresh, entry("kubectl-gitlab_agent")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", fi, err)
	}
	js := filepath.Join(dir, "json")
	if err := os.WriteFile(js, []byte(`{"apiVersion":"v1","kind":"Config","clusters":[{"name":"a","cluster":{"server":"https://a"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKubeconfig(context.Background(), js, entry("kubectl-gitlab_agent")); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(js)
	if err != nil || cfg.Clusters["a"] == nil || cfg.Clusters["gitlab_example_com"] == nil {
		t.Fatalf("%v %v", cfg, err)
	}
}

func TestWriteKubeconfigInParallel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(handWritten), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() {
			e := entry("kubectl-gitlab_agent")
			e.User = fmt.Sprintf("u-%d", i)
			e.Context = fmt.Sprintf("c-%d", i)
			_, errs[i] = WriteKubeconfig(context.Background(), path, e)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range errs {
		if cfg.Contexts[fmt.Sprintf("c-%d", i)] == nil || cfg.AuthInfos[fmt.Sprintf("u-%d", i)] == nil {
			t.Errorf("entry %d lost", i)
		}
	}
	got, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(got), "# my clusters, do not lose this comment\napiVersion: v1\nkind: Config\nclusters:\n  # production first\n  - name: prod\n") {
		t.Errorf("the head of the file changed:\n%s", got)
	}
}

func TestStalePluginCommandsAreRepaired(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	gone := filepath.Join(dir, "store", "gitlab-agent", "v0.0.9", "kubectl-gitlab_agent")
	other := filepath.Join(dir, "bin", "some-other-plugin")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
users:
- name: old-agent
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: %s
      args: [get-token, --agent-id, "7"]
- name: not-ours
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: %s
      args: [get-token]
`, gone, other)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := WriteKubeconfig(context.Background(), path, entry("/home/u/.krew/bin/kubectl-gitlab_agent"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repaired) != 1 || res.Repaired[0] != "old-agent" {
		t.Fatalf("repaired %v", res.Repaired)
	}
	loaded, _ := clientcmd.LoadFromFile(path)
	if loaded.AuthInfos["old-agent"].Exec.Command != "/home/u/.krew/bin/kubectl-gitlab_agent" || loaded.AuthInfos["not-ours"].Exec.Command != other {
		t.Fatalf("%+v %+v", loaded.AuthInfos["old-agent"].Exec, loaded.AuthInfos["not-ours"].Exec)
	}
}

func TestPluginCommandKeepsTheUnresolvedPath(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "bin", PluginName)
	_ = os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(self, link); err != nil {
		t.Skip("no symlinks")
	}
	if got, err := PluginCommand(link); err != nil || got != link {
		t.Fatalf("started through %s: %q %v", link, got, err)
	}
	t.Setenv("PATH", filepath.Dir(link))
	if got, _ := PluginCommand(PluginName); got != link {
		t.Fatalf("started by name from PATH: %q", got)
	}
	if got, _ := PluginCommand("/nonexistent/x"); got != PluginName {
		t.Fatalf("argv0 not us, plugin on PATH: %q", got)
	}
	t.Setenv("PATH", "")
	if got, _ := PluginCommand("/nonexistent/x"); got != self {
		t.Fatalf("fallback: %q", got)
	}
}

// The cluster entry is named for the GitLab host and shared by every agent
// on it (and by glab): when it moves to another KAS, the TLS and proxy
// settings made for the old one do not come along; while it stays, they do.
func TestKubeconfigClusterMovesWithoutTheOldTransport(t *testing.T) {
	ca := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	old := `apiVersion: v1
kind: Config
clusters:
- name: gitlab_example_com
  cluster:
    server: %s
    insecure-skip-tls-verify: true
    tls-server-name: old-kas.example.com
    proxy-url: http://10.0.0.9:3128
    extensions:
    - name: note
      extension: {kept: "yes"}
`
	for _, c := range []struct {
		name, server string
		ca           string
		keep         bool
	}{
		{"another server", "https://old-kas.example.com/k8s-proxy", "", false},
		{"another server, with --ca-file", "https://old-kas.example.com/k8s-proxy", ca, false},
		{"the same server", "https://kas.example.com/k8s-proxy", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(old, c.server)), 0o600); err != nil {
				t.Fatal(err)
			}
			e := entry("kubectl-gitlab_agent")
			e.CA = []byte(c.ca)
			if _, err := WriteKubeconfig(context.Background(), path, e); err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Clusters["gitlab_example_com"]
			kept := got.InsecureSkipTLSVerify && got.TLSServerName == "old-kas.example.com" && got.ProxyURL == "http://10.0.0.9:3128"
			dropped := !got.InsecureSkipTLSVerify && got.TLSServerName == "" && got.ProxyURL == ""
			if c.keep && !kept || !c.keep && !dropped {
				t.Errorf("insecure=%v tls-server-name=%q proxy-url=%q (keep them: %v)", got.InsecureSkipTLSVerify, got.TLSServerName, got.ProxyURL, c.keep)
			}
			if got.Server != e.Server || got.Extensions["note"] == nil {
				t.Errorf("server %q, extensions %v", got.Server, got.Extensions)
			}
			if _, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{CurrentContext: e.Context}).ClientConfig(); err != nil {
				t.Errorf("client-go refuses the entry: %v", err)
			}
		})
	}
}
