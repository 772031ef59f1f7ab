package install

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// rotateAllWorld installs agents old (token 100 days old), fresh (2 days)
// and flaky (100 days, its rollouts fail from then on), and registers
// remote, installed in no cluster here.
func rotateAllWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	for _, a := range []struct {
		name string
		age  time.Duration
	}{{"old", 100 * 24 * time.Hour}, {"fresh", 2 * 24 * time.Hour}, {"flaky", 100 * 24 * time.Hour}} {
		w.gl.SetNow(func() time.Time { return time.Now().Add(-a.age) })
		w.install(t, a.name)
	}
	w.gl.SetNow(time.Now)
	w.gl.AddAgent(w.project, "remote", w.user)
	w.cluster.Rollout = func(d *appsv1.Deployment) kube.RolloutStatus {
		n := *d.Spec.Replicas
		if strings.HasPrefix(d.Name, "flaky-") {
			return kube.RolloutStatus{Desired: n, Available: n, Problem: "ImagePullBackOff"}
		}
		return kube.RolloutStatus{Desired: n, Updated: n, Ready: n, Available: n, Done: true}
	}
	return w
}

func rotateAllOptions(w *world, olderThan time.Duration, dryRun DryRun) RotateAllOptions {
	o := RotateAllOptions{Options: w.opts("any"), OlderThan: olderThan}
	o.DryRun = dryRun
	return o
}

// TestRotateAll: each agent's result, the counts, the tokens GitLab holds
// after, and a dry run that changes nothing.
func TestRotateAll(t *testing.T) {
	w := rotateAllWorld(t)
	before := map[string][]int64{}
	for _, n := range []string{"old", "fresh", "flaky", "remote"} {
		before[n] = w.active(t, n)
	}
	applied := len(w.cluster.Applied())

	dry, err := RotateAll(context.Background(), w.env(), rotateAllOptions(w, 90*24*time.Hour, DryRunClient))
	if err != nil {
		t.Fatal(err)
	}
	if dry.Rotated != 2 || dry.Kept != 1 || dry.Skipped != 1 || dry.Failed != 0 || len(w.cluster.Applied()) != applied {
		t.Errorf("dry run: %+v, %d applies", dry, len(w.cluster.Applied())-applied)
	}
	for _, n := range []string{"old", "fresh", "flaky"} {
		if got := w.active(t, n); len(got) != 1 || got[0] != before[n][0] {
			t.Errorf("the dry run changed %s's tokens: %v, were %v", n, got, before[n])
		}
	}

	res, err := RotateAll(context.Background(), w.env(), rotateAllOptions(w, 90*24*time.Hour, ""))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range res.Agents {
		got[a.Agent] = a.Result
	}
	want := map[string]string{"old": Rotated, "fresh": Kept, "flaky": Failed, "remote": Skipped}
	for n, r := range want {
		if got[n] != r {
			t.Errorf("%s: %s, want %s (%+v)", n, got[n], r, res.Agents)
		}
	}
	if res.Rotated != 1 || res.Kept != 1 || res.Skipped != 1 || res.Failed != 1 {
		t.Errorf("counts %+v", res)
	}
	if now := w.active(t, "old"); len(now) != 1 || now[0] == before["old"][0] {
		t.Errorf("old's tokens %v, were %v: want one new", now, before["old"])
	}
	for _, n := range []string{"fresh", "flaky"} {
		if now := w.active(t, n); len(now) != 1 || now[0] != before[n][0] {
			t.Errorf("%s's tokens %v, were %v: want the same one", n, now, before[n])
		}
	}
	for _, a := range res.Agents {
		if a.Agent == "flaky" && (a.Err == nil || a.Reason == "") {
			t.Errorf("flaky's failure is not said: %+v", a)
		}
		if a.Agent == "old" && (a.NewTokenID == 0 || a.TokenID != before["old"][0]) {
			t.Errorf("old's rotation: %+v", a)
		}
	}
	b, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(b), `"agents":[`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}

// TestRotateAllStopsWhenTheClusterDoesNot: an unreachable cluster rotates
// nothing and says so.
func TestRotateAllStopsWhenTheClusterDoesNot(t *testing.T) {
	w := rotateAllWorld(t)
	w.cluster.Fail(fake.Reachable, w.cluster.Count(fake.Reachable)+1, errors.New("connection refused"))
	res, err := RotateAll(context.Background(), w.env(), rotateAllOptions(w, 0, ""))
	if err == nil || !strings.Contains(err.Error(), "nothing was rotated") || len(res.Agents) != 0 {
		t.Errorf("RotateAll: %+v, %v", res, err)
	}
}

// TestRenderAsRunning: what diff NAME compares: the running agent's KAS
// address, version and token, kept; an agent not installed renders as
// asked.
func TestRenderAsRunning(t *testing.T) {
	w := newWorld(t)
	w.install(t, "prod")
	id, tok := w.secret(t, "prod")
	out, err := RenderAsRunning(context.Background(), w.cluster, w.opts("prod").Input)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out.Objects)
	for _, want := range []string{"kubectl-gitlab-agent/token-id", "checksum/token"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the render as running lacks %s", want)
		}
	}
	if id == 0 || tok == "" {
		t.Fatalf("secret: %d %q", id, tok)
	}
	none, err := RenderAsRunning(context.Background(), w.cluster, w.opts("other").Input)
	if err != nil || len(none.Objects) == 0 {
		t.Fatalf("not installed: %v", err)
	}
	w.cluster.Fail(fake.GetDeployment, w.cluster.Count(fake.GetDeployment)+1, errors.New("forbidden"))
	if _, err := RenderAsRunning(context.Background(), w.cluster, w.opts("prod").Input); err == nil {
		t.Error("a failed read of the Deployment was not an error")
	}
}

// TestClusterStatus: without GitLab, the agents installed in the cluster
// (or named) with their Deployments, and why GitLab was not asked.
func TestClusterStatus(t *testing.T) {
	w := newWorld(t)
	w.install(t, "prod")
	st, err := ClusterStatus(context.Background(), w.cluster, nil, "no credential")
	if err != nil || len(st) != 1 || st[0].Agent.Name != "prod" || st[0].Cluster == nil || st[0].GitLabNotAsked != "no credential" || st[0].Verdict != Installed {
		t.Fatalf("ClusterStatus: %+v, %v", st, err)
	}
	st, err = ClusterStatus(context.Background(), w.cluster, []string{"prod", "gone"}, "no credential")
	if err != nil || len(st) != 2 || st[1].Cluster != nil || st[1].Verdict != NotInstalled {
		t.Fatalf("ClusterStatus of named agents: %+v, %v", st, err)
	}
	w.cluster.Fail(fake.Reachable, w.cluster.Count(fake.Reachable)+1, errors.New("connection refused"))
	if _, err := ClusterStatus(context.Background(), w.cluster, nil, ""); err == nil {
		t.Error("an unreachable cluster was not an error")
	}
}

// TestPlanJSON: a dry run's plan as JSON: the GitLab steps and the
// cluster's part as diff's document.
func TestPlanJSON(t *testing.T) {
	w := newWorld(t)
	o := w.opts("prod")
	o.DryRun = DryRunClient
	res, err := Install(context.Background(), w.env(), InstallOptions{Options: o})
	if err != nil || res.Plan == nil {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	b, err := json.Marshal(res.Plan)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		GitLab  []string `json:"gitlab"`
		Cluster struct {
			Differs bool `json:"differs"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.GitLab) == 0 || !doc.Cluster.Differs {
		t.Errorf("plan JSON %s: %v", b, err)
	}
}

// TestRotateAllInterrupted: Ctrl-C during an agent's rotation ends the run
// with that rotation's own error (which token is active), not a bare
// "context canceled", and counts the agents rotated before.
func TestRotateAllInterrupted(t *testing.T) {
	w := rotateAllWorld(t)
	w.cluster.Rollout = nil
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// flaky is first; old's Secret apply is interrupted.
	applies := 0
	connect := w.cluster.OnApply
	w.cluster.OnApply = func(o *unstructured.Unstructured) {
		connect(o)
		if o.GetKind() == "Secret" && o.GetNamespace() == "gitlab-agent-old" {
			applies++
			cancel()
		}
	}
	res, err := RotateAll(ctx, w.env(), rotateAllOptions(w, 90*24*time.Hour, ""))
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("RotateAll: %+v, %v; want the interrupt", res, err)
	}
	if applies == 0 || !strings.Contains(err.Error(), `agent "old"`) || !strings.Contains(err.Error(), "(1 agents were rotated before)") || !strings.Contains(err.Error(), "token") {
		t.Errorf("the interrupted run says %q", err)
	}
}
