package cmd

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"
)

// rotateAllWorld installs, against the fake GitLab and cluster, agent old
// and agent flaky with tokens made 100 days ago and agent fresh with one
// made 2 days ago, and registers agent remote, installed in no cluster
// here. flaky's rollouts fail from then on.
func rotateAllWorld(t *testing.T) *inProcess {
	t.Helper()
	w := newInProcess(t)
	for _, a := range []struct {
		name string
		age  time.Duration
	}{{"old", 100 * 24 * time.Hour}, {"flaky", 100 * 24 * time.Hour}, {"fresh", 2 * 24 * time.Hour}} {
		w.gl.SetNow(func() time.Time { return time.Now().Add(-a.age) })
		if code, _, errOut := w.run(t, "install", a.name, "--no-config"); code != 0 {
			t.Fatalf("install %s: %s", a.name, errOut)
		}
	}
	w.gl.SetNow(time.Now)
	w.gl.AddAgent(w.project, "remote", w.user)
	w.cluster.Rollout = func(d *appsv1.Deployment) kube.RolloutStatus {
		n := *d.Spec.Replicas
		if d.Name == "flaky-gitlab-agent-v2" {
			return kube.RolloutStatus{Desired: n, Available: n, Problem: `pod "flaky" cannot start: ImagePullBackOff`}
		}
		return kube.RolloutStatus{Desired: n, Updated: n, Ready: n, Available: n, Done: true}
	}
	return w
}

// activeTokens is the IDs of agent name's active tokens.
func activeTokens(w *inProcess, name string) []int64 {
	var out []int64
	for _, a := range w.gl.Agents(w.project) {
		if a.Name == name {
			for _, tok := range w.gl.AgentTokens(&a) {
				if tok.Status == "active" {
					out = append(out, tok.ID)
				}
			}
		}
	}
	return out
}

// tokensOf is every agent's active tokens.
func tokensOf(w *inProcess) map[string][]int64 {
	out := map[string][]int64{}
	for _, a := range w.gl.Agents(w.project) {
		out[a.Name] = activeTokens(w, a.Name)
	}
	return out
}

// TestTokenRotateAll: token rotate --all --older-than 90d over four
// agents: old's 100-day-old token is rotated, fresh's is kept, remote is
// skipped (not installed here, said so), flaky's rotation fails (its old
// token back in place) and the exit code is 1; the dry run lists the same
// with each token's age and changes nothing.
func TestTokenRotateAll(t *testing.T) {
	w := rotateAllWorld(t)
	before := tokensOf(w)
	applied := len(w.cluster.Applied())

	code, out, errOut := w.run(t, "token", "rotate", "--all", "--older-than", "90d", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	want := fmt.Sprintf(`AGENT    NAMESPACE            RESULT         WHY
flaky    gitlab-agent-flaky   would rotate   token %d is 100d old, older than 90d
fresh    gitlab-agent-fresh   kept           token %d is 2d old, newer than 90d
old      gitlab-agent-old     would rotate   token %d is 100d old, older than 90d
remote   <none>               skipped        not installed in this cluster: its token can be rotated only where the agent runs
would rotate 2 (tokens older than 90d), kept 1, skipped 1, failed 0
`, before["flaky"][0], before["fresh"][0], before["old"][0])
	if out != want {
		t.Errorf("dry run printed\n%swant\n%s", out, want)
	}
	if !reflect.DeepEqual(tokensOf(w), before) || len(w.cluster.Applied()) != applied {
		t.Errorf("the dry run changed something: tokens %v, were %v", tokensOf(w), before)
	}
	jsonCommand{"token-rotate-all-dry-run", []string{"token", "rotate", "--all", "--older-than", "90d", "--dry-run"}, false, reflect.TypeFor[rotateAllResult]()}.runJSON(t, w)

	code, out, errOut = w.run(t, "token", "rotate", "--all", "--older-than", "90d", "-o", "json")
	if code != 1 || !strings.HasSuffix(errOut, "error: the rotation of 1 of 4 agents failed (\"flaky\"): see each one's reason above\n") {
		t.Fatalf("rotate --all: exit %d\n%s%s", code, out, errOut)
	}
	golden.Compare(t, filepath.Join("testdata", "json", "token-rotate-all.json"), []byte(stableJSON(out, w.gl.URL)))
	after := tokensOf(w)
	if len(after["old"]) != 1 || after["old"][0] == before["old"][0] {
		t.Errorf("old's tokens %v, were %v: want one new token", after["old"], before["old"])
	}
	for _, name := range []string{"fresh", "flaky", "remote"} {
		if !reflect.DeepEqual(after[name], before[name]) {
			t.Errorf("%s's tokens %v, were %v", name, after[name], before[name])
		}
	}
	if !strings.Contains(errOut, fmt.Sprintf(`revoked the old token %d; agent "old" runs with token %d`, before["old"][0], after["old"][0])) {
		t.Errorf("stderr lacks old's rotation:\n%s", errOut)
	}

	// Without a bound every installed agent is rotated; the text form.
	w.cluster.Rollout = nil
	code, out, errOut = w.run(t, "token", "rotate", "--all")
	if code != 0 || !strings.Contains(out, "rotated 3 (tokens any age), kept 0, skipped 1, failed 0\n") {
		t.Errorf("rotate --all: exit %d\n%s%s", code, out, errOut)
	}
	for _, name := range []string{"old", "fresh", "flaky"} {
		if now := activeTokens(w, name); len(now) != 1 || slicesEqual(now, after[name]) {
			t.Errorf("%s's tokens %v, were %v: want one new token", name, now, after[name])
		}
	}
}

func slicesEqual(a, b []int64) bool { return reflect.DeepEqual(a, b) }

// TestTokenRotateAllInANamespace: with -n, --all looks for the agents in
// that namespace only; the others are skipped, and say where they were
// looked for.
func TestTokenRotateAllInANamespace(t *testing.T) {
	w := newInProcess(t)
	for _, name := range []string{"a", "b"} {
		if code, _, errOut := w.run(t, "install", name, "--no-config"); code != 0 {
			t.Fatalf("install %s: %s", name, errOut)
		}
	}
	code, out, errOut := w.run(t, "token", "rotate", "--all", "-n", "gitlab-agent-b")
	if code != 0 || !strings.Contains(out, "not installed in namespace gitlab-agent-b of this cluster") || !strings.Contains(out, "rotated 1 (tokens any age), kept 0, skipped 1, failed 0") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}
