package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// Issue 26's items 14 to 17: a local attacker (another user of the machine,
// a process on it) and hostile inputs. TestAttack26ItemNN is item NN.

// kasFlag names a KAS on no site of the fake GitLab's, for the commands
// that only write a kubeconfig.
var kasFlag = []string{"--kas-proxy-url", "https://kas.example.com/k8s-proxy"}

// Item 14: another user plants a link in the /tmp CI runners share (or a
// link to a directory); kubeconfig, proxy --kubeconfig-out and token create
// --token-file wrote through it, over any file the victim may write.
func TestAttack26Item14PlantedSymlinks(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can give a link to another user (os.Lchown) to play the second account")
	}
	g := newGitLab(t)
	g.fake.AddAgent(g.project, "tun", g.maintainer)
	shared := t.TempDir() // as /tmp
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	victims := filepath.Join(home, ".kube", "config")
	if err := os.MkdirAll(filepath.Dir(victims), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victims, []byte(handWrittenKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	plant := func(name, target string) string {
		link := filepath.Join(shared, name)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		return link
	}
	kc := plant("x.kubeconfig", victims)
	kubeDir := plant("kube", filepath.Dir(victims))
	cache := "XDG_CACHE_HOME=" + t.TempDir()
	p := []string{"--project", "infra/agents"}

	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, append([]string{"kubeconfig", "tun", "--kubeconfig", kc}, kasFlag...), kc},
		{[]string{"KUBECONFIG=" + kc}, append([]string{"kubeconfig", "tun"}, kasFlag...), kc},
		{nil, append([]string{"kubeconfig", "tun", "--kubeconfig", filepath.Join(kubeDir, "config")}, kasFlag...), kubeDir},
		{[]string{cache}, append([]string{"proxy", "tun", "--port", "0", "--kubeconfig-out", kc}, kasFlag...), kc},
		{nil, []string{"token", "create", "tun", "--name", "ci", "--token-file", filepath.Join(kubeDir, "token")}, kubeDir},
	} {
		r := g.run(t, c.env, append(c.args, p...)...)
		wantError(t, r, "not following the symbolic link "+c.want+": it belongs to", "uid 65534")
	}
	if n := len(g.activeTokens("tun")); n != 0 {
		t.Errorf("the token that could not be written stays active (%d)", n)
	}
	// --token-file at the planted link itself: the link is replaced by the
	// token file, never written through.
	if r := g.run(t, nil, "token", "create", "tun", "--name", "ci2", "--token-file", kc, "--force", "--project", "infra/agents"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if fi, err := os.Lstat(kc); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("the token file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(victims); string(b) != handWrittenKubeconfig {
		t.Fatalf("the victim's kubeconfig was written:\n%s", b)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(victims), "token")); err == nil {
		t.Error("the token was written where the planted directory link points")
	}

	// The user's own link in their own directory (~/.kube/config to their
	// dotfiles) is followed, and stays a link.
	own := filepath.Join(home, "kubeconfig")
	if err := os.Symlink(victims, own); err != nil {
		t.Fatal(err)
	}
	if r := g.run(t, nil, append([]string{"kubeconfig", "tun", "--kubeconfig", own, "--project", "infra/agents"}, kasFlag...)...); r.code != 0 {
		t.Fatalf("through the user's own link: %+v", r)
	}
	if b, _ := os.ReadFile(victims); !strings.Contains(string(b), "-infra_agents-tun") {
		t.Errorf("the context was not written through the user's own link:\n%s", b)
	}
	if fi, err := os.Lstat(own); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the user's link was replaced: %v %v", fi, err)
	}
}

// Item 15: a GitLab URL's %0A and %1b became a newline and ESC in the
// kubeconfig's cluster, user and context names.
func TestAttack26Item15ControlCharactersInTheGitLabURL(t *testing.T) {
	t.Parallel()
	kc := filepath.Join(t.TempDir(), "config")
	u := "https://gitlab.example.com/%0Aevil%1b%5b2J"
	r := runIn(t, runSpec{env: []string{"GITLAB_URL=" + u, "CI_SERVER_URL=" + u, "CI_JOB_TOKEN=job-token", "GITLAB_TOKEN="}},
		pluginBin(), append([]string{"kubeconfig", "101", "--ci", "--kubeconfig", kc}, kasFlag...)...)
	wantError(t, r, "cannot name kubeconfig entries")
	if strings.Contains(r.stdout+r.stderr, "\x1b") || strings.Contains(r.stderr, "\nevil") {
		t.Errorf("a control character in the output: %q", r.stderr)
	}
	if _, err := os.Stat(kc); err == nil {
		t.Error("a kubeconfig was written")
	}
}

// Item 16: KUBECONFIG=/dev/zero grew to 600 MB in 4 s; a FIFO blocked the
// command in open(), deaf to the first SIGTERM. kubeconfig's own reads (the
// file it edits, the injected KUBECONFIG --ci reads) refuse both at once, and
// a directory.
func TestAttack26Item16KubeconfigThatIsNotAFile(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	g.fake.AddAgent(g.project, "tun", g.maintainer)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{fifo, "/dev/zero", dir} {
		r := g.run(t, nil, append([]string{"kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", bad}, kasFlag...)...)
		wantError(t, r, "kubeconfig "+bad+" is a", "not a regular file")
		r = g.run(t, []string{"KUBECONFIG=" + bad, "CI_JOB_TOKEN=job-token", "CI_SERVER_URL=" + g.fake.URL},
			append([]string{"kubeconfig", "infra/agents:tun", "--ci", "--kubeconfig", filepath.Join(t.TempDir(), "config")}, kasFlag...)...)
		wantError(t, r, "kubeconfig "+bad+" is a", "not a regular file")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi, err)
	}
}

// Item 17: the proxy passed any Upgrade (h2c, anything) on to KAS with the
// credential. A local process asks for h2c: refused before a credential is
// minted or KAS is dialled.
func TestAttack26Item17ProxyUpgradesOnlyAsKubernetes(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	g.fake.AddAgent(g.project, "tun", g.maintainer)
	var conns, hits, withCredential atomic.Int32
	kas := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			withCredential.Add(1)
		}
	}))
	kas.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	kas.Start()
	t.Cleanup(kas.Close)
	_, log, addr := startPlugin(t, []string{"GITLAB_URL=" + g.fake.URL, "GITLAB_TOKEN=" + g.mToken, "CI_PROJECT_ID=", "CI_JOB_TOKEN=", "XDG_CACHE_HOME=" + t.TempDir()},
		true, "proxy", "tun", "--project", "infra/agents", "--port", "0", "--kas-proxy-url", kas.URL+"/k8s-proxy")
	t.Cleanup(func() { g.outputs.add(log.String()) })
	upgrade := func(protocols string) string {
		return "GET /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: " + protocols + "\r\n\r\n"
	}
	for _, u := range []string{"h2c", "websocket, h2c", "H2C, SPDY/3.1"} {
		if code := rawStatus(t, addr, upgrade(u)); code != http.StatusBadRequest {
			t.Errorf("Upgrade: %s: %d, want 400", u, code)
		}
	}
	pats := 0
	for _, p := range g.fake.PersonalAccessTokens(g.maintainer) {
		if slices.Contains(p.Scopes, "k8s_proxy") {
			pats++
		}
	}
	if conns.Load() != 0 || pats != 0 {
		t.Fatalf("refused upgrades reached KAS (%d connections) or minted a credential (%d tokens)", conns.Load(), pats)
	}
	// What Kubernetes uses passes, with the credential.
	for _, u := range []string{"SPDY/3.1", "websocket"} {
		if code := rawStatus(t, addr, upgrade(u)); code != http.StatusOK {
			t.Errorf("Upgrade: %s: %d, want the stand-in KAS's 200", u, code)
		}
	}
	if hits.Load() != 2 || withCredential.Load() != 2 {
		t.Errorf("KAS saw %d upgrades, %d with the credential; want 2 and 2", hits.Load(), withCredential.Load())
	}
}
