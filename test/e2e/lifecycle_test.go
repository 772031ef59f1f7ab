package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// simulateAgentk stands in for agentk's connection to KAS, which kwok's pods
// cannot make: while a ready agent pod mounts a token Secret, the fake GitLab
// records that token as used. Test code only.
func simulateAgentk(t *testing.T, g *gitlabEnv) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	cs := clientset(t)
	wg.Go(func() {
		for ctx.Err() == nil {
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=gitlab-agent"})
			if err == nil {
				for _, p := range pods.Items {
					if p.DeletionTimestamp != nil || !podReady(p) {
						continue
					}
					for _, v := range p.Spec.Volumes {
						if v.Name != "secret-volume" || v.Secret == nil {
							continue
						}
						s, err := cs.CoreV1().Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
						if err == nil {
							g.fake.MarkTokenUsed(strings.TrimSpace(string(s.Data["token"])), time.Now())
						}
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// snapshot is what must not change when an install is re-run.
type snapshot struct {
	agents, tokens, commits int
	versions                string
}

func (g *gitlabEnv) snapshot(t *testing.T, ns string) snapshot {
	t.Helper()
	s := snapshot{agents: len(g.fake.Agents(g.project)), commits: len(g.fake.Commits())}
	for _, a := range g.fake.Agents(g.project) {
		s.tokens += len(g.fake.AgentTokens(&a))
	}
	r := runCmd(t, "", kubectl, "get", "all,secrets,serviceaccounts,roles,rolebindings", "-n", ns, "-l", "app.kubernetes.io/instance",
		"-o", "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}")
	items := strings.Fields(r.stdout)
	sort.Strings(items)
	s.versions = strings.Join(items, " ")
	return s
}

// activeTokensHeld checks the invariant every failure must keep: no active
// token of the agent exists that no Secret in the cluster holds.
func (g *gitlabEnv) activeTokensHeld(t *testing.T, agent string) {
	t.Helper()
	held := map[string]bool{}
	secrets, err := clientset(t).CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		held[strings.TrimSpace(string(s.Data["token"]))] = true
	}
	for _, a := range g.fake.Agents(g.project) {
		if a.Name != agent {
			continue
		}
		for _, tok := range g.fake.AgentTokens(&a) {
			if tok.Status == "active" && !held[tok.Token] {
				t.Errorf("active token %d %q is held by no Secret", tok.ID, tok.Name)
			}
		}
	}
}

func TestInstallLifecycle(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	p := []string{"--project", "infra/agents"}
	const ns = "gitlab-agent-lc"

	// Dry run on a fresh project: a plan, nothing done.
	r := g.run(t, nil, append([]string{"install", "lc", "--dry-run"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `GitLab: would register agent "lc" in infra/agents`) ||
		!strings.Contains(r.stdout, "Cluster: Plan: ") || len(g.fake.Agents(g.project)) != 0 || len(g.fake.Commits()) != 0 {
		t.Fatalf("dry run: %+v", r)
	}

	start := time.Now()
	r = g.run(t, nil, append([]string{"install", "lc", "--v=1"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `agent "lc" is installed in namespace gitlab-agent-lc and connected`) {
		t.Fatalf("install: %+v", r)
	}
	t.Logf("a full install took %s:\n%s", time.Since(start).Round(time.Millisecond), r.stderr)
	for _, want := range []string{"discover KAS", "register agent", "agent config file", "token", "apply", "rollout", "connection", "install took"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("--v=1 output lacks the phase %q", want)
		}
	}
	cfg, ok := g.fake.File(g.project, "main", ".gitlab/agents/lc/config.yaml")
	if !ok || !strings.Contains(string(cfg), "ci_access:") || !strings.Contains(string(cfg), "agent: {}") {
		t.Fatalf("config file: %q", cfg)
	}
	// The agentk image follows KAS's version.
	d, err := clientset(t).AppsV1().Deployments(ns).Get(context.Background(), "lc-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":v17.3.1") {
		t.Fatalf("deployment: %v", err)
	}

	before := g.snapshot(t, ns)
	r = g.run(t, nil, append([]string{"install", "lc"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("re-run: %+v", r)
	}
	if after := g.snapshot(t, ns); after != before {
		t.Fatalf("a re-run changed something:\nbefore %+v\nafter  %+v", before, after)
	}
	// Server dry runs: the apiserver dry-runs each apply and deletion, and
	// nothing changes.
	for _, args := range [][]string{{"install", "lc"}, {"token", "rotate", "lc"}, {"uninstall", "lc", "--revoke-tokens"}} {
		r = g.run(t, nil, append(append(args, "--dry-run=server"), p...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "server dry run") {
			t.Fatalf("%v --dry-run=server: %+v", args, r)
		}
		if after := g.snapshot(t, ns); after != before {
			t.Fatalf("%v --dry-run=server changed something:\nbefore %+v\nafter  %+v", args, before, after)
		}
	}

	r = g.run(t, nil, append([]string{"status", "lc", "-o", "json"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"verdict": "connected"`) || !strings.Contains(r.stdout, `"namespace": "gitlab-agent-lc"`) {
		t.Fatalf("status: %+v", r)
	}
	r = g.run(t, nil, append([]string{"status"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Verdict    connected") {
		t.Fatalf("status table: %+v", r)
	}

	// Upgrade: a new agentk version rolls out; the token stays.
	r = g.run(t, nil, "upgrade", "lc", "--agent-version", "17.3.0", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "+        image: registry.gitlab.com/gitlab-org/cluster-integration/gitlab-agent/agentk:v17.3.0") {
		t.Fatalf("upgrade --dry-run: %+v", r)
	}
	r = g.run(t, nil, "upgrade", "lc", "--agent-version", "17.3.0")
	if r.code != 0 || !strings.Contains(r.stdout, "upgraded") {
		t.Fatalf("upgrade: %+v", r)
	}
	r = g.run(t, nil, append([]string{"status", "lc"}, p...)...)
	if !strings.Contains(r.stdout, "agentk v17.3.0") {
		t.Fatalf("status after upgrade: %s", r.stdout)
	}

	// Rotation under a watch: never below 2 available replicas.
	oldTokens := g.fake.AgentTokens(&g.fake.Agents(g.project)[0])
	minAvail := watchAvailable(t, ns, "lc-gitlab-agent-v2")
	r = g.run(t, nil, append([]string{"token", "rotate", "lc"}, p...)...)
	if got := minAvail(); r.code != 0 || got < 2 {
		t.Fatalf("rotate: %+v (fewest available replicas %d)", r, got)
	}
	tokens := g.fake.AgentTokens(&g.fake.Agents(g.project)[0])
	active := 0
	for _, tok := range tokens {
		if tok.Status == "active" {
			active++
			if tok.ID == oldTokens[0].ID {
				t.Error("the old token is still active")
			}
		}
	}
	if active != 1 {
		t.Errorf("%d active tokens after rotation, want 1", active)
	}
	g.activeTokensHeld(t, "lc")

	// A rotation whose rollout never becomes ready: the old token stays.
	r = g.run(t, nil, append([]string{"token", "rotate", "lc", "--set", "nodeSelector.no-such=node", "--timeout", "3s"}, p...)...)
	wantError(t, r, "the new token", "was revoked", "stays active and is back in the Secret")
	g.activeTokensHeld(t, "lc")
	r = g.run(t, nil, append([]string{"status", "lc", "-o", "json"}, p...)...)
	if !strings.Contains(r.stdout, `"verdict": "connected"`) {
		t.Errorf("after a failed rotation: %s", r.stdout)
	}

	// Uninstall: nothing with the install's labels stays.
	r = g.run(t, nil, "uninstall", "lc")
	wantError(t, r, "pass --yes")
	r = g.run(t, nil, append([]string{"uninstall", "lc", "--yes", "--revoke-tokens"}, p...)...)
	if r.code != 0 {
		t.Fatalf("uninstall: %+v", r)
	}
	r = runCmd(t, "", kubectl, "get", "all,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,namespaces", "-A", "-l", "app.kubernetes.io/instance=lc", "-o", "name")
	if strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("left after uninstall:\n%s", r.stdout)
	}
	for _, tok := range g.fake.AgentTokens(&g.fake.Agents(g.project)[0]) {
		if tok.Status == "active" {
			t.Errorf("token %d still active after --revoke-tokens", tok.ID)
		}
	}
}

// watchAvailable records the fewest available replicas of a Deployment from
// now until the returned function is called.
func watchAvailable(t *testing.T, ns, name string) func() int32 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cs := clientset(t)
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Every change the apiserver makes is an event: none is missed between
	// samples, as polling would.
	w, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + name, ResourceVersion: d.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	lowest := d.Status.AvailableReplicas
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				mu.Lock()
				lowest = min(lowest, d.Status.AvailableReplicas)
				mu.Unlock()
			}
		}
	}()
	return func() int32 {
		cancel()
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return lowest
	}
}

func TestInstallFailuresLeaveNoStrayToken(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	p := []string{"--project", "infra/agents"}

	// GitLab refuses each step in turn.
	for _, f := range []fakegitlab.Fault{
		{Route: "POST /api/v4/projects/{id}/cluster_agents", Status: 403},
		{Route: "POST /api/v4/projects/{id}/repository/files/{path}", Status: 500},
		{Route: "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens", Status: 429, RetryAfter: "3600"},
	} {
		g.fake.Inject(f)
		r := g.run(t, nil, append([]string{"install", "flt", "--no-wait"}, p...)...)
		if r.code != 1 || !strings.HasPrefix(lastLine(r.stderr), "error: ") {
			t.Fatalf("%s: %+v", f.Route, r)
		}
		t.Logf("%s → %s", f.Route, lastLine(r.stderr))
		g.fake.ClearFaults()
		g.activeTokensHeld(t, "flt")
	}

	// The cluster refuses an object (at the dry run, before anything but the
	// token Secret is written): the new token is revoked.
	r := g.run(t, nil, append([]string{"install", "flt", "--set", "podLabels.bad=has spaces"}, p...)...)
	wantError(t, r, "Deployment", "invalid", "the new token", "was revoked", `agent "flt" stays registered`, "stays, holding the revoked token")
	t.Logf("refused object → %s", lastLine(r.stderr))
	g.activeTokensHeld(t, "flt")

	// Ctrl-C while waiting for a rollout that cannot finish.
	cmd := exec.Command(kubectl, "gitlab-agent", "install", "flt", "--project", "infra/agents", "--set", "nodeSelector.no-such=node")
	cmd.Env = append(append([]string{}, env...), "GITLAB_URL="+g.fake.URL, "GITLAB_TOKEN="+g.mToken)
	var errOut syncBuffer // read while the process writes it
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(errOut.String(), "waiting for Deployment") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// kubectl passes the signal on to the plugin it runs.
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(errOut.String(), "was revoked") {
		t.Fatalf("interrupted install: exit %d\n%s", code, errOut.String())
	}
	g.outputs.add(errOut.String())
	t.Logf("interrupted → %s", lastLine(errOut.String()))
	g.activeTokensHeld(t, "flt")
}

func TestInstallAdoptsHelmChartInstall(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	// The objects a chart install would have made: our render, labelled as
	// Helm labels them, applied by someone else.
	r := runCmd(t, "glagent-fake-helm-token\n", kubectl, "gitlab-agent", "render", "hlm", "--token-file", "-", "--kas-address", "wss://kas.example.com")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	helm := regexp.MustCompile(`(\n *)app.kubernetes.io/managed-by: kubectl-gitlab-agent`).
		ReplaceAllString(r.stdout, "${1}app.kubernetes.io/managed-by: Helm${1}helm.sh/chart: gitlab-agent-2.6.2")
	a := runCmd(t, helm, kubectl, "apply", "--server-side", "--field-manager=helm", "-f", "-")
	if a.code != 0 {
		t.Fatal(a.stderr)
	}
	waitAvailable(t, "gitlab-agent-hlm", "hlm-gitlab-agent-v2", 2)
	r = g.run(t, nil, "install", "hlm", "--project", "infra/agents")
	if r.code != 0 {
		t.Fatalf("install over a chart install: %+v", r)
	}
	out := runCmd(t, "", kubectl, "get", "deployments,secrets,serviceaccounts", "-A", "-l", "app.kubernetes.io/instance=hlm", "-o", "name")
	lines := strings.Fields(out.stdout)
	sort.Strings(lines)
	want := []string{"deployment.apps/hlm-gitlab-agent-v2", "secret/hlm-gitlab-agent-token", "serviceaccount/hlm-gitlab-agent", "serviceaccount/hlm-gitlab-agent-ocs-scanning-pod-sa"}
	if strings.Join(lines, " ") != strings.Join(want, " ") {
		t.Fatalf("objects after adoption: %v, want %v", lines, want)
	}
	d, err := clientset(t).AppsV1().Deployments("gitlab-agent-hlm").Get(context.Background(), "hlm-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || d.Labels["app.kubernetes.io/managed-by"] != "kubectl-gitlab-agent" {
		t.Fatalf("the Deployment was not adopted: %v %v", err, d.Labels)
	}
	g.activeTokensHeld(t, "hlm")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
