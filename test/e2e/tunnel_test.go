package e2e

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
)

// tunnelEnv is a fake GitLab whose agent "tun" lets infra/agents' users in
// (user_access), a fake KAS in front of the test apiserver, and the KAS CA.
type tunnelEnv struct {
	*gitlabEnv
	kas    *fakekas.Server
	caFile string
	agent  *fakegitlab.Agent
	cache  string // XDG_CACHE_HOME for the commands
}

func newTunnel(t *testing.T) *tunnelEnv {
	needCluster(t)
	t.Helper()
	g := newGitLab(t)
	kas, err := fakekas.New(g.fake, cl.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kas.Close)
	g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = kas.ProxyURL() })
	dir := t.TempDir()
	ca := filepath.Join(dir, "kas-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kas.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	te := &tunnelEnv{gitlabEnv: g, kas: kas, caFile: ca, cache: filepath.Join(dir, "cache")}
	te.agent = g.fake.AddAgent(g.project, "tun", g.maintainer)
	g.fake.SetFile(g.project, "main", ".gitlab/agents/tun/config.yaml", []byte(
		"ci_access:\n  projects:\n  - id: infra/agents\nuser_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: infra/agents\n"))
	return te
}

// run runs a command in the tunnel's environment (its own token cache).
func (te *tunnelEnv) run(t *testing.T, extra []string, name string, args ...string) result {
	t.Helper()
	r := runIn(t, runSpec{env: append(te.env(), extra...)}, name, args...)
	te.outputs.add(r.stdout, r.stderr)
	return r
}

// env is the tunnel's GitLab and token cache, for commands run by hand.
func (te *tunnelEnv) env() []string {
	return []string{"GITLAB_URL=" + te.fake.URL, "GITLAB_TOKEN=" + te.mToken, "CI_PROJECT_ID=", "CI_JOB_TOKEN=", "XDG_CACHE_HOME=" + te.cache}
}

// proxyPATs counts the maintainer's k8s_proxy tokens.
func (te *tunnelEnv) proxyPATs() (n int, active []fakegitlab.PersonalAccessToken) {
	for _, p := range te.fake.PersonalAccessTokens(te.maintainer) {
		if len(p.Scopes) == 1 && p.Scopes[0] == "k8s_proxy" {
			n++
			if !p.Revoked {
				active = append(active, p)
			}
		}
	}
	return n, active
}

func seedKubeconfig(t *testing.T, path string) *clientcmdapi.Config {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	for i := 0; i < 20; i++ {
		n := fmt.Sprintf("other-%02d", i)
		cfg.Clusters[n] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://10.0.0.%d:6443", i), InsecureSkipTLSVerify: i%2 == 0}
		cfg.AuthInfos[n] = &clientcmdapi.AuthInfo{Token: fmt.Sprintf("token-%02d", i), Username: "u"}
		cfg.Contexts[n] = &clientcmdapi.Context{Cluster: n, AuthInfo: n, Namespace: fmt.Sprintf("ns-%d", i)}
	}
	cfg.CurrentContext = "other-07"
	cfg.Preferences.Colors = true
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	loaded, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

func TestKubeconfigThroughKAS(t *testing.T) {
	te := newTunnel(t)
	kc := filepath.Join(t.TempDir(), "config")
	before := seedKubeconfig(t, kc)
	for i := 0; i < 2; i++ {
		r := te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kc, "--ca-file", te.caFile)
		if r.code != 0 {
			t.Fatalf("kubeconfig: %+v", r)
		}
	}
	after, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	for n := range before.Clusters {
		if !reflect.DeepEqual(before.Clusters[n], after.Clusters[n]) || !reflect.DeepEqual(before.AuthInfos[n], after.AuthInfos[n]) || !reflect.DeepEqual(before.Contexts[n], after.Contexts[n]) {
			t.Errorf("entry %s changed", n)
		}
	}
	if after.CurrentContext != "other-07" || !after.Preferences.Colors || len(after.Contexts) != 21 {
		t.Errorf("current context %q, colors %v, %d contexts", after.CurrentContext, after.Preferences.Colors, len(after.Contexts))
	}
	host := strings.NewReplacer(".", "_", ":", "_").Replace(strings.TrimPrefix(te.fake.URL, "http://"))
	ctxName := host + "-infra_agents-tun"
	c := after.Contexts[ctxName]
	if c == nil || c.Cluster != host || c.AuthInfo != fmt.Sprintf("%s-%d", host, te.agent.ID) {
		t.Fatalf("context %s: %+v", ctxName, c)
	}
	user := after.AuthInfos[c.AuthInfo]
	if user.Exec == nil || user.Exec.InteractiveMode != clientcmdapi.NeverExecInteractiveMode || !filepath.IsAbs(user.Exec.Command) || user.Exec.InstallHint == "" {
		t.Fatalf("exec user: %+v", user.Exec)
	}
	if after.Clusters[host].Server != te.kas.ProxyURL() {
		t.Fatalf("server %q", after.Clusters[host].Server)
	}

	k := func(args ...string) result {
		return te.run(t, nil, kubectl, append([]string{"--kubeconfig", kc, "--context", ctxName}, args...)...)
	}
	if r := k("get", "ns", "default", "-o", "name"); r.code != 0 || strings.TrimSpace(r.stdout) != "namespace/default" {
		t.Fatalf("get ns through KAS: %+v", r)
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: via-kas, namespace: default}\ndata: {a: b}\n"
	r := te.run(t, nil, "sh", "-c", fmt.Sprintf("printf '%%s' '%s' | kubectl --kubeconfig %s --context %s apply -f -", cm, kc, ctxName))
	if r.code != 0 || !strings.Contains(r.stdout, "configmap/via-kas") {
		t.Fatalf("apply through KAS: %+v", r)
	}
	if r := k("get", "pods", "-A"); r.code != 0 {
		t.Fatalf("get pods: %+v", r)
	}
	if n, active := te.proxyPATs(); n != 1 || len(active) != 1 {
		t.Errorf("%d k8s_proxy tokens minted over several kubectl calls, want 1", n)
	}
	if len(te.kas.Requests()) == 0 {
		t.Error("nothing went through the fake KAS")
	}
	files, _ := filepath.Glob(filepath.Join(te.cache, "kubectl-gitlab-agent", "k8s-proxy-tokens", "*.json"))
	if len(files) != 1 {
		t.Fatalf("%d cache files", len(files))
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Dir(files[0])); fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v", fi.Mode().Perm())
	}
	r = te.run(t, nil, kubectl, "gitlab-agent", "token-cache", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "kubectl-gitlab-agent k8s_proxy") {
		t.Fatalf("token-cache list: %+v", r)
	}
	r = te.run(t, nil, kubectl, "gitlab-agent", "token-cache", "clear", "--revoke")
	if _, active := te.proxyPATs(); r.code != 0 || len(active) != 0 {
		t.Fatalf("token-cache clear --revoke: %+v, %d active", r, len(active))
	}
}

func TestGetTokenParallelMintsOne(t *testing.T) {
	te := newTunnel(t)
	var wg sync.WaitGroup
	outs := make([]result, 20)
	for i := range outs {
		wg.Go(func() {
			outs[i] = te.run(t, nil, filepath.Join(binDir, "kubectl-gitlab_agent"), "get-token", "--agent-id", fmt.Sprint(te.agent.ID))
		})
	}
	wg.Wait()
	for i, r := range outs {
		var ec struct {
			APIVersion, Kind string
			Status           struct {
				Token               string `json:"token"`
				ExpirationTimestamp string `json:"expirationTimestamp"`
			} `json:"status"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ec) != nil || ec.Kind != "ExecCredential" || ec.APIVersion != "client.authentication.k8s.io/v1" {
			t.Fatalf("call %d: %+v", i, r)
		}
		if r.stdout != outs[0].stdout || !strings.HasPrefix(ec.Status.Token, fmt.Sprintf("pat:%d:glpat-", te.agent.ID)) || ec.Status.ExpirationTimestamp == "" {
			t.Fatalf("call %d printed another credential: %s", i, r.stdout)
		}
	}
	if n, _ := te.proxyPATs(); n != 1 {
		t.Fatalf("20 parallel calls minted %d tokens, want 1", n)
	}
	// Printing the credential is get-token's job; nothing else may.
	te.outputs.reset()
}

func TestTunnelRefusals(t *testing.T) {
	te := newTunnel(t)
	r := te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "999999", "--project", "infra/agents")
	wantError(t, r, `no agent "999999" is registered in infra/agents`, "agent list --project infra/agents")

	// A job of a project the agent's ci_access does not name.
	other := te.fake.AddProject("apps/other")
	te.fake.SetRole(other, te.maintainer, fakegitlab.Developer)
	job := te.fake.AddJobToken(te.maintainer, other)
	kc := filepath.Join(t.TempDir(), "config")
	r = te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kc, "--ca-file", te.caFile, "--ci", "--use-context")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = te.run(t, []string{"CI_JOB_TOKEN=" + job}, kubectl, "--kubeconfig", kc, "get", "ns", "default")
	// kubectl prints a refused discovery as "Error from server (Forbidden)".
	if r.code == 0 || !strings.Contains(r.stderr, "Error from server (Forbidden)") {
		t.Fatalf("job outside ci_access: %s", r.stderr)
	}
	// The config project's own jobs are allowed.
	own := te.fake.AddJobToken(te.maintainer, te.project)
	if r = te.run(t, []string{"CI_JOB_TOKEN=" + own}, kubectl, "--kubeconfig", kc, "get", "ns", "default"); r.code != 0 {
		t.Fatalf("job of the config project: %+v", r)
	}
	// Outside a job, --ci says what is missing.
	r = te.run(t, nil, filepath.Join(binDir, "kubectl-gitlab_agent"), "get-token", "--agent-id", fmt.Sprint(te.agent.ID), "--ci")
	wantError(t, r, "CI_JOB_TOKEN is not set")
	// Without GitLab credentials, get-token says how to give them.
	r = te.run(t, []string{"GITLAB_TOKEN="}, filepath.Join(binDir, "kubectl-gitlab_agent"), "get-token", "--agent-id", fmt.Sprint(te.agent.ID))
	wantError(t, r, "GITLAB_TOKEN")
}

func TestProxyThroughKAS(t *testing.T) {
	te := newTunnel(t)
	out := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	r := te.run(t, nil, kubectl, "gitlab-agent", "proxy", "tun", "--project", "infra/agents", "--address", "0.0.0.0")
	wantError(t, r, "is not loopback: pass --accept-hosts")

	cmd, errOut, addr := startPlugin(t, te.env(), true, "proxy", "tun", "--project", "infra/agents", "--port", "0", "--kubeconfig-out", out, "--ca-file", te.caFile)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("the proxy serves on %q, want loopback", addr)
	}
	k := func(args ...string) result {
		return te.run(t, nil, kubectl, append([]string{"--kubeconfig", out}, args...)...)
	}
	if r := k("get", "ns", "default", "-o", "name"); r.code != 0 || strings.TrimSpace(r.stdout) != "namespace/default" {
		t.Fatalf("get through the proxy: %+v", r)
	}
	// GitLab revokes the cached token: the proxy gets a new one, once.
	_, active := te.proxyPATs()
	if len(active) != 1 {
		t.Fatalf("%d active k8s_proxy tokens", len(active))
	}
	te.fake.RevokePAT(active[0].Token)
	if r := k("get", "ns", "default", "-o", "name"); r.code != 0 {
		t.Fatalf("after revocation: %+v\n%s", r, errOut.String())
	}
	if n, active := te.proxyPATs(); n != 2 || len(active) != 1 {
		t.Fatalf("after revocation: %d tokens, %d active", n, len(active))
	}
	// A watch streams through without buffering.
	w := exec.Command(kubectl, "--kubeconfig", out, "get", "configmaps", "-n", "default", "--watch", "-o", "name")
	w.Env = env
	wout, _ := w.StdoutPipe()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(wout)
	if _, err := lines.ReadString('\n'); err != nil { // the initial list
		t.Fatal(err)
	}
	if r := runCmd(t, "", kubectl, "create", "configmap", "watched", "-n", "default"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	got := make(chan string, 1)
	go func() {
		for {
			l, err := lines.ReadString('\n')
			if err != nil || strings.Contains(l, "watched") {
				got <- l
				return
			}
		}
	}()
	select {
	case l := <-got:
		if !strings.Contains(l, "configmap/watched") {
			t.Errorf("watch event: %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Error("the watch event did not come through the proxy")
	}
	_ = w.Process.Kill()
	_ = w.Wait()

	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("proxy after Ctrl-C: exit %d\n%s", code, errOut.String())
	}
	te.outputs.add(errOut.String())
}
