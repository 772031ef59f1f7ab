package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// interrupt starts the plugin with args and a stdin nobody writes to, sends
// sig after a moment, and returns the exit code, stderr and how long the
// plugin took to end after the signal (it is killed after 15s).
func interrupt(t *testing.T, extra []string, sig os.Signal, waitFor string, args ...string) (int, string, time.Duration) {
	t.Helper()
	cmd := exec.Command(pluginBin(), args...)
	cmd.Env = append(append([]string{}, env...), extra...)
	stdin, err := cmd.StdinPipe() // held open: a read of it blocks
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	errOut := &syncBuffer{}
	cmd.Stderr, cmd.Stdout = errOut, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	wait := time.After(500 * time.Millisecond)
	if waitFor != "" {
		wait = time.After(2 * time.Minute)
	}
	for waiting := true; waiting; {
		select {
		case <-done: // ended before the signal: the caller sees how
			return cmd.ProcessState.ExitCode(), errOut.String(), 0
		case <-wait:
			waiting = false
		case <-time.After(50 * time.Millisecond):
			waiting = waitFor == "" || !strings.Contains(errOut.String(), waitFor)
		}
	}
	sent := time.Now()
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("%v did not end within 15s of %v", args, sig)
	}
	return cmd.ProcessState.ExitCode(), errOut.String(), time.Since(sent)
}

// Item 5: Ctrl-C was ignored while reading input, and inputs had no cap.
// Not parallel: the signal goes half a second after the start, and other
// tests' processes beside it would make that moment less sure.
func TestAttack05CtrlCAndEndlessInput(t *testing.T) {
	// A FIFO no one writes to: opening it waits (for a writer), and Ctrl-C
	// must end that wait too.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sig  os.Signal
		args []string
	}{
		{os.Interrupt, []string{"render", "demo", "--token-file", "-"}},
		{os.Interrupt, []string{"render", "demo", "-f", "-"}},
		{os.Interrupt, []string{"diff", "-f", "-"}},
		{syscall.SIGTERM, []string{"render", "demo", "--token-file", "-"}},
		{os.Interrupt, []string{"render", "demo", "--token-file", fifo}},
		{os.Interrupt, []string{"diff", "-f", fifo}},
		{os.Interrupt, []string{"agent", "list", "--project", "infra/agents", "--gitlab-token-file", "/dev/stdin"}},
	} {
		code, errOut, took := interrupt(t, nil, c.sig, "", c.args...)
		lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
		want := 130 // 128 + the signal's number, as a shell gives
		if c.sig == syscall.SIGTERM {
			want = 143
		}
		if code != want || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: interrupted") || !strings.Contains(lines[0], "nothing was changed") {
			t.Errorf("%v after %v: exit %d, stderr %q", c.args, c.sig, code, errOut)
		}
		t.Logf("%v ended %s after %v: %s", c.args, took.Round(time.Millisecond), c.sig, lastLine(errOut))
	}
	for _, c := range []struct {
		code int
		args []string
	}{
		{1, []string{"render", "demo", "-f", "/dev/zero"}},
		{1, []string{"render", "demo", "--token-file", "/dev/zero"}},
		{2, []string{"diff", "-f", "/dev/zero"}},
		{1, []string{"agent", "list", "--project", "infra/agents", "--gitlab-token-file", "/dev/zero"}},
		{2, []string{"doctor", "prod", "--ca-file", "/dev/zero"}},
		{1, []string{"proxy", "prod", "--ca-file", "/dev/zero"}},
	} {
		start := time.Now()
		cmd := exec.Command(pluginBin(), c.args...)
		cmd.Env = env
		var errOut syncBuffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if cmd.ProcessState.ExitCode() != c.code || !strings.Contains(errOut.String(), "larger than") {
			t.Errorf("%v: exit %d after %s: %q", c.args, cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond), errOut.String())
		}
	}

	// Ctrl-C while waiting for the agent to connect is an interruption, not
	// "did not connect in time".
	needCluster(t)
	g := newGitLab(t)
	code, errOut, _ := interrupt(t, []string{"GITLAB_URL=" + g.fake.URL, "GITLAB_TOKEN=" + g.mToken, "CI_PROJECT_ID=", "CI_JOB_TOKEN="},
		os.Interrupt, "to connect to KAS", "install", "sigint", "--project", "infra/agents")
	g.outputs.add(errOut)
	last := lastLine(errOut)
	if code != 130 || !strings.HasPrefix(last, "error: interrupted") || strings.Contains(last, "in time") || !strings.Contains(last, "was revoked") {
		t.Errorf("install interrupted while waiting: exit %d, %q", code, last)
	}
	g.activeTokensHeld(t, "sigint")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// Item 6: kubeconfig wrote krew's versioned path, which the next upgrade
// deletes, breaking every context.
func TestAttack06KrewUpgradeKeepsContextsWorking(t *testing.T) {
	te := newTunnel(t)
	root := t.TempDir()
	store := func(v string) string { return filepath.Join(root, "store", "gitlab-agent", v, "kubectl-gitlab_agent") }
	link := filepath.Join(root, "bin", "kubectl-gitlab_agent")
	copyFile(t, pluginBin(), store("v0.1.0"))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(store("v0.1.0"), link); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + filepath.Dir(link) + string(os.PathListSeparator) + os.Getenv("PATH")
	kc := filepath.Join(t.TempDir(), "config")
	old := fmt.Sprintf(`apiVersion: v1
kind: Config
users:
- name: another-agent
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: %s
      args: [get-token, --agent-id, "4242"]
`, store("v0.0.9"))
	if err := os.WriteFile(kc, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r := te.run(t, []string{path}, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kc, "--ca-file", te.caFile, "--use-context")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range cfg.AuthInfos {
		if u.Exec == nil || u.Exec.Command != link {
			t.Errorf("user %s runs %v, want the unresolved %s", name, u.Exec, link)
		}
	}
	// krew upgrades: the new version's directory, the link moved, the old
	// version's directory removed.
	copyFile(t, pluginBin(), store("v0.2.0"))
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(store("v0.2.0"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(store("v0.1.0"))); err != nil {
		t.Fatal(err)
	}
	r = te.run(t, nil, kubectl, "--kubeconfig", kc, "get", "ns", "default", "-o", "name")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "namespace/default" {
		t.Fatalf("after the upgrade: %+v", r)
	}
}

// Item 10: parallel kubeconfig writes failed on the lock, and the file was
// rewritten whole.
func TestAttack10ParallelKubeconfigWrites(t *testing.T) {
	te := newTunnel(t)
	for i := 0; i < 10; i++ {
		te.fake.AddAgent(te.project, fmt.Sprintf("par-%d", i), te.maintainer)
	}
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(handWrittenKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]result, 10)
	for i := range results {
		wg.Go(func() {
			results[i] = runIn(t, runSpec{env: te.env()}, kubectl, "gitlab-agent", "kubeconfig", fmt.Sprintf("par-%d", i), "--project", "infra/agents", "--kubeconfig", kc)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("writer %d: %+v", i, r)
		}
	}
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Contexts) != 2+10 || cfg.CurrentContext != "prod" {
		t.Errorf("%d contexts, current %q", len(cfg.Contexts), cfg.CurrentContext)
	}
	got, _ := os.ReadFile(kc)
	orig := strings.SplitAfter(handWrittenKubeconfig, "\n")
	i := 0
	for _, l := range strings.SplitAfter(string(got), "\n") {
		if i < len(orig) && l == orig[i] {
			i++
		}
	}
	if i != len(orig) {
		t.Fatalf("the original line %d %q did not survive byte for byte:\n%s", i+1, orig[i], got)
	}
}

// handWrittenKubeconfig is kept as people keep theirs (comments, quoting,
// flow style), the one pkg/tunnel's tests edit.
var handWrittenKubeconfig = func() string {
	b, err := os.ReadFile("../../pkg/tunnel/testdata/hand-written.kubeconfig")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// Item 12: --set config.token put the token in the process list.
func TestAttack12TokenOnTheCommandLine(t *testing.T) {
	t.Parallel()
	r := runCmd(t, "", pluginBin(), "render", "demo", "--set", "replicas=1,config.token=glagent-on-the-command-line")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "--token-file") || strings.Contains(r.stderr, "on-the-command-line") {
		t.Fatalf("%+v", r)
	}
}

// Item 14: an unreachable cluster gave klog noise and one error per object;
// install changed GitLab before finding out.
func TestAttack14UnreachableCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: x}
contexts:
- name: gone
  context: {cluster: gone, user: u}
current-context: gone
`), 0o600); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(dir, "m.yaml")
	var b strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: default}\n", i)
	}
	if err := os.WriteFile(manifests, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, runSpec{env: []string{"KUBECONFIG=" + kc}}, pluginBin(), "diff", "-f", manifests)
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "cannot reach the cluster at https://127.0.0.1:1") || !strings.Contains(lines[0], "kubectl cluster-info") {
		t.Fatalf("diff against an unreachable cluster: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	g := newGitLab(t)
	r = g.run(t, []string{"KUBECONFIG=" + kc}, "install", "unreach", "--project", "infra/agents")
	wantError(t, r, "cannot reach the cluster", "nothing was changed in GitLab")
	for _, req := range g.fake.Requests() {
		if req.Method != "GET" && req.Method != "HEAD" {
			t.Errorf("install changed GitLab before reaching the cluster: %s %s", req.Method, req.Path)
		}
	}
}

// Item 15: parallel installs of one agent left tokens no Secret holds.
func TestAttack15ParallelInstalls(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	// Slow token creation: every install reads the Secret before any has
	// written one, so all three create a token and race to claim it.
	g.fake.Inject(fakegitlab.Fault{Route: tokensRoute, Latency: 500 * time.Millisecond})
	for round := 0; round < 2; round++ {
		// Registered and configured already: every install goes straight
		// to the token.
		name := fmt.Sprintf("race-%d", round)
		g.fake.AddAgent(g.project, name, g.maintainer)
		g.fake.SetFile(g.project, "main", ".gitlab/agents/"+name+"/config.yaml", []byte(
			"ci_access:\n  projects:\n  - id: infra/agents\nuser_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: infra/agents\n"))
		var wg sync.WaitGroup
		results := make([]result, 3)
		for i := range results {
			wg.Go(func() {
				results[i] = g.run(t, nil, "install", name, "--project", "infra/agents", "--no-wait")
			})
		}
		wg.Wait()
		for i, r := range results {
			t.Logf("%s install %d: exit %d %s", name, i, r.code, lastLine(r.stderr))
		}
		g.activeTokensHeld(t, name)
		if n := len(g.activeTokens(name)); n != 1 {
			t.Errorf("%s: %d active tokens after three parallel installs, want 1", name, n)
		}
		lost := 0
		for _, r := range results {
			if r.code != 0 {
				t.Errorf("%s: an install failed: %s", name, lastLine(r.stderr))
			}
			if strings.Contains(r.stderr, "wrote its token first: revoked this one's token") {
				lost++
			}
		}
		// Two create a token (GitLab allows two), one loses the claim;
		// the third waits at the limit and uses the winner's.
		if lost < 1 {
			t.Errorf("%s: no install says it lost the race for the Secret", name)
		}
	}
}
