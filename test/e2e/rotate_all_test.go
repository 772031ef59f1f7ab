package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTokenRotateAll: token rotate --all --older-than 90d over the agents
// of a project: rot-old, installed with a token made 100 days ago, is
// rotated with no downtime; rot-new's fresh token is kept; rot-far, in no
// cluster here, is skipped and says why; rot-bad, applied by hand (its
// Secret names no token), fails and makes the exit code 1. The dry run
// lists the same, with each token's age, and changes nothing.
func TestTokenRotateAll(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	p := []string{"--project", "infra/agents"}
	g.fake.SetNow(func() time.Time { return time.Now().Add(-100 * 24 * time.Hour) })
	if r := g.run(t, nil, append([]string{"install", "rot-old", "--no-config"}, p...)...); r.code != 0 {
		t.Fatalf("install rot-old: %+v", r)
	}
	g.fake.SetNow(time.Now)
	if r := g.run(t, nil, append([]string{"install", "rot-new", "--no-config"}, p...)...); r.code != 0 {
		t.Fatalf("install rot-new: %+v", r)
	}
	g.fake.AddAgent(g.project, "rot-far", g.maintainer)
	g.fake.AddAgent(g.project, "rot-bad", g.maintainer)
	bad := runCmd(t, "glagent-applied-by-hand\n", kubectl, "gitlab-agent", "render", "rot-bad", "--token-file", "-", "--kas-address", "wss://kas.example.com")
	if a := runCmd(t, bad.stdout, kubectl, "apply", "--server-side", "-f", "-"); bad.code != 0 || a.code != 0 {
		t.Fatalf("applying rot-bad: %s%s", bad.stderr, a.stderr)
	}
	oldToken := secretToken(t, "gitlab-agent-rot-old", "rot-old-gitlab-agent-token")
	newToken := secretToken(t, "gitlab-agent-rot-new", "rot-new-gitlab-agent-token")

	r := g.run(t, nil, append([]string{"token", "rotate", "--all", "--older-than", "90d", "--dry-run"}, p...)...)
	for _, want := range []string{
		`(?m)^rot-bad +gitlab-agent-rot-bad +failed +the token Secret names no token ID`,
		`(?m)^rot-far +<none> +skipped +not installed in this cluster: its token can be rotated only where the agent runs$`,
		`(?m)^rot-new +gitlab-agent-rot-new +kept +token \d+ is \d+s old, newer than 90d$`,
		`(?m)^rot-old +gitlab-agent-rot-old +would rotate +token \d+ is 100d old, older than 90d$`,
		`(?m)^would rotate 1 \(tokens older than 90d\), kept 1, skipped 1, failed 1$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("the dry run's output does not match %s:\n%s", want, r.stdout)
		}
	}
	if r.code != 1 || secretToken(t, "gitlab-agent-rot-old", "rot-old-gitlab-agent-token") != oldToken {
		t.Fatalf("dry run: %+v", r)
	}

	minAvail := watchAvailable(t, "gitlab-agent-rot-old", "rot-old-gitlab-agent-v2")
	r = g.run(t, nil, append([]string{"token", "rotate", "--all", "--older-than", "90d"}, p...)...)
	if got := minAvail(); got < 2 {
		t.Errorf("rot-old's Deployment fell to %d available replicas during the rotation", got)
	}
	if r.code != 1 || !strings.Contains(r.stdout, "rotated 1 (tokens older than 90d), kept 1, skipped 1, failed 1\n") ||
		!strings.Contains(r.stdout, "reinstall with 'kubectl gitlab-agent install rot-bad'") ||
		!strings.HasPrefix(lastLine(r.stderr), `error: the rotation of 1 of 4 agents failed ("rot-bad")`) {
		t.Fatalf("rotate --all: %+v", r)
	}
	if secretToken(t, "gitlab-agent-rot-old", "rot-old-gitlab-agent-token") == oldToken {
		t.Error("rot-old's Secret holds its old token")
	}
	if secretToken(t, "gitlab-agent-rot-new", "rot-new-gitlab-agent-token") != newToken {
		t.Error("rot-new's fresh token was rotated")
	}
	for _, name := range []string{"rot-old", "rot-new"} {
		if n := len(g.activeTokens(name)); n != 1 {
			t.Errorf("%s has %d active tokens, want 1", name, n)
		}
		g.activeTokensHeld(t, name)
	}
	r = g.run(t, nil, append([]string{"status", "rot-old", "-o", "json"}, p...)...)
	if !strings.Contains(r.stdout, `"verdict": "connected"`) {
		t.Errorf("rot-old after the rotation: %s", r.stdout)
	}
}

// secretToken is the token a Secret holds.
func secretToken(t *testing.T, ns, name string) string {
	t.Helper()
	s, err := clientset(t).CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(s.Data["token"]))
}
