package install

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const tokensRoute = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens"

func TestInstallFreshThenUpToDate(t *testing.T) {
	w := newWorld(t)
	res := w.install(t, "prod")
	if !res.Registered || !res.ConfigCommitted || !res.TokenCreated || !res.SecretWritten || !res.Connected || res.UpToDate {
		t.Errorf("fresh install: %+v", res)
	}
	active := w.active(t, "prod")
	if len(active) != 1 || active[0] != res.TokenID {
		t.Fatalf("active tokens %v, want [%d]", active, res.TokenID)
	}
	if id, tok := w.secret(t, "prod"); id != res.TokenID || tok != w.tokenValue(t, "prod", id) {
		t.Errorf("the Secret holds token %d, want %d with its value", id, res.TokenID)
	}
	cfg, ok := w.gl.File(w.project, "main", agentconfig.Path("prod"))
	if !ok || !strings.Contains(string(cfg), "ci_access") || !strings.Contains(string(cfg), "access_as") {
		t.Errorf("config file not committed as expected:\n%s", cfg)
	}
	// The KAS address and agentk version come from GitLab.
	d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
	if d == nil {
		t.Fatal("no Deployment applied")
	}
	if run := RunningOf(d); run.KasAddress != "wss://kas.example.com" || run.Version != "v17.3.1" {
		t.Errorf("running %+v, want GitLab's KAS address and version", run)
	}
	want := []string{"reach the cluster", "discover KAS", "register agent", "agent config file", "token", "diff", "apply", "rollout", "connection"}
	if !slices.Equal(w.report.phases, want) {
		t.Errorf("phases %v, want %v", w.report.phases, want)
	}
	for _, s := range []string{"registered agent \"prod\"", "created token", "applied", "is available", "is connected"} {
		if !strings.Contains(w.report.text(), s) {
			t.Errorf("the report lacks %q:\n%s", s, w.report.text())
		}
	}

	// Again: nothing changes anywhere.
	applied, commits := len(w.cluster.Applied()), len(w.gl.Commits())
	again := w.install(t, "prod")
	if !again.UpToDate || again.TokenCreated || again.Registered || again.ConfigCommitted || again.TokenID != res.TokenID || !again.Connected {
		t.Errorf("re-run: %+v", again)
	}
	if len(w.cluster.Applied()) != applied || len(w.gl.Commits()) != commits || len(w.active(t, "prod")) != 1 {
		t.Error("a re-run changed something")
	}
}

func TestInstallUserChoicesWin(t *testing.T) {
	w := newWorld(t)
	o := w.opts("prod")
	o.Input.Values.Config.KasAddress = "wss://kas.internal/"
	o.Input.Values.Image.Tag = "v17.2.0"
	o.Input.Set = manifest.Keys{manifest.KeyKasAddress: true, manifest.KeyImageTag: true}
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: o, NoConfig: true}); err != nil {
		t.Fatal(err)
	}
	d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
	if run := RunningOf(d); run.KasAddress != "wss://kas.internal/" || run.Version != "v17.2.0" {
		t.Errorf("running %+v, want the user's choices", run)
	}
	if len(w.gl.Commits()) != 0 {
		t.Error("NoConfig committed the config file")
	}
}

func TestInstallDryRun(t *testing.T) {
	for _, existing := range []bool{false, true} {
		w := newWorld(t)
		if existing {
			w.gl.AddAgent(w.project, "prod", w.user)
		}
		o := w.opts("prod")
		o.DryRun = DryRunClient
		res, err := Install(context.Background(), w.env(), InstallOptions{Options: o})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan == nil || res.Plan.Cluster == nil {
			t.Fatalf("no plan: %+v", res)
		}
		plan := strings.Join(res.Plan.GitLab, "\n")
		for _, s := range []string{"commit .gitlab/agents/prod/config.yaml", "create a token"} {
			if !strings.Contains(plan, s) {
				t.Errorf("existing=%v: plan lacks %q:\n%s", existing, s, plan)
			}
		}
		if strings.Contains(plan, "register") == existing {
			t.Errorf("existing=%v: plan %q", existing, plan)
		}
		if c := res.Plan.Cluster.Counts(); c["created"] == 0 {
			t.Errorf("the plan creates no objects: %v", c)
		}
		if len(w.cluster.Applied()) != 0 || len(w.gl.Commits()) != 0 || len(w.gl.Agents(w.project)) != map[bool]int{false: 0, true: 1}[existing] {
			t.Errorf("existing=%v: the dry run changed something", existing)
		}
		if existing && len(w.active(t, "prod")) != 0 {
			t.Error("the dry run created a token")
		}
	}
}

func TestInstallUnreachableClusterChangesNothing(t *testing.T) {
	w := newWorld(t)
	w.cluster.Fail(fake.Reachable, 1, errors.New("cannot reach the cluster at https://x"))
	_, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
	if err == nil || !strings.Contains(err.Error(), "nothing was changed in GitLab") {
		t.Fatalf("err = %v", err)
	}
	if len(w.gl.Agents(w.project)) != 0 || len(w.gl.Requests()) != 0 {
		t.Error("GitLab was asked or changed")
	}
}

// TestInstallFailuresRevokeTheNewToken fails install at every step after its
// token was created: the token is revoked, and the error says so and what
// stays.
func TestInstallFailuresRevokeTheNewToken(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name  string
		setup func(w *world, o *InstallOptions) context.Context
		want  []string
	}{
		{"claiming the Secret fails", func(w *world, _ *InstallOptions) context.Context {
			w.cluster.Fail(fake.ClaimSecret, 1, boom)
			return context.Background()
		}, []string{"writing the new token into Secret", "was revoked", `agent "prod" stays registered`}},
		{"the diff fails", func(w *world, _ *InstallOptions) context.Context {
			w.cluster.Fail(fake.DryRun, 1, boom)
			return context.Background()
		}, []string{"boom", "was revoked", "holding the revoked token"}},
		{"an object is refused", func(w *world, _ *InstallOptions) context.Context {
			w.cluster.Fail(fake.Apply, 4, boom)
			return context.Background()
		}, []string{"applying the agent's objects", "was revoked", "objects applied in namespace gitlab-agent-prod stay"}},
		{"the rollout cannot finish", func(w *world, _ *InstallOptions) context.Context {
			w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus {
				return kube.RolloutStatus{Desired: 2, Problem: "ImagePullBackOff"}
			}
			return context.Background()
		}, []string{"cannot roll out: ImagePullBackOff", "was revoked"}},
		{"agentk never connects", func(w *world, o *InstallOptions) context.Context {
			w.connect = false
			o.Timeout = 50 * time.Millisecond
			return context.Background()
		}, []string{"did not connect to KAS in time", "kubectl logs -n gitlab-agent-prod", "was revoked"}},
		{"interrupted while waiting", func(w *world, o *InstallOptions) context.Context {
			w.connect = false
			ctx, cancel := context.WithCancel(context.Background())
			w.cluster.Hook(fake.WaitRollout, 1, func() error { cancel(); return nil })
			w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus { return kube.RolloutStatus{Desired: 2} }
			return ctx
		}, []string{"context canceled", "was revoked"}},
		{"revoking fails too", func(w *world, _ *InstallOptions) context.Context {
			w.cluster.Fail(fake.DryRun, 1, boom)
			w.gl.Inject(fakegitlab.Fault{Route: "DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens/{token_id}", Status: http.StatusForbidden})
			return context.Background()
		}, []string{"revoking the new token", "failed too", "kubectl gitlab-agent token revoke prod"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			o := InstallOptions{Options: w.opts("prod")}
			ctx := tt.setup(w, &o)
			_, err := Install(ctx, w.env(), o)
			failedSaying(t, "install", err, tt.want...)
			if tt.name != "revoking fails too" {
				if a := w.active(t, "prod"); len(a) != 0 {
					t.Errorf("active tokens left: %v", a)
				}
			}
		})
	}
}

// TestInstallLostCreateAnswer: GitLab created the token but its answer was
// lost; the token is found by its name and revoked.
func TestInstallLostCreateAnswer(t *testing.T) {
	w := newWorld(t)
	w.gl.Inject(fakegitlab.Fault{Route: tokensRoute, Status: http.StatusGatewayTimeout, AfterWork: true})
	_, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
	if err == nil || !strings.Contains(err.Error(), "it was revoked") {
		t.Fatalf("err = %v", err)
	}
	if a := w.active(t, "prod"); len(a) != 0 {
		t.Errorf("active tokens left: %v", a)
	}
	if n := w.gl.Calls(tokensRoute); n != 1 {
		t.Errorf("the create was sent %d times", n)
	}
}

func TestInstallAtTheTokenLimit(t *testing.T) {
	for _, yes := range []bool{false, true} {
		w := newWorld(t)
		a := w.gl.AddAgent(w.project, "prod", w.user)
		old := w.gl.AddAgentToken(a, "old", w.user)
		used := w.gl.AddAgentToken(a, "used", w.user)
		w.gl.MarkTokenUsed(used.Token, time.Now())
		o := InstallOptions{Options: w.opts("prod")}
		o.Yes = yes
		res, err := Install(context.Background(), w.env(), o)
		if !yes {
			var ce *ConfirmationError
			if !errors.As(err, &ce) || !strings.Contains(ce.Would, `revoke token `) || !strings.Contains(ce.Would, `"old"`) {
				t.Fatalf("without consent: %v", err)
			}
			var limit *gitlab.TokenLimitError
			if !errors.As(err, &limit) {
				t.Errorf("the limit is not in the error chain: %v", err)
			}
			if got := w.active(t, "prod"); len(got) != 2 {
				t.Errorf("tokens changed without consent: %v", got)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := w.active(t, "prod"); !slices.Equal(got, []int64{used.ID, res.TokenID}) {
			t.Errorf("active %v, want the used one %d and the new %d (the least recently used %d revoked)", got, used.ID, res.TokenID, old.ID)
		}
	}
}

// TestInstallRaceForTheSecret: another install writes the Secret between
// this one's read and its claim.
func TestInstallRaceForTheSecret(t *testing.T) {
	for _, winnerActive := range []bool{true, false} {
		w := newWorld(t)
		a := w.gl.AddAgent(w.project, "prod", w.user)
		winner := w.gl.AddAgentToken(a, "winner", w.user)
		in := w.opts("prod").Input
		w.cluster.Hook(fake.ClaimSecret, 1, func() error {
			w.cluster.Put(secretObject(in, winner.ID, winner.Token))
			if !winnerActive {
				w.cluster.Put(secretObject(in, 999, "glagent-gone"))
			}
			return nil
		})
		res, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
		if !winnerActive {
			if err == nil || !strings.Contains(err.Error(), "changed while this install ran") {
				t.Fatalf("err = %v", err)
			}
			if got := w.active(t, "prod"); !slices.Equal(got, []int64{winner.ID}) {
				t.Errorf("active %v: this install's own token was not revoked", got)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.TokenID != winner.ID || res.TokenCreated {
			t.Errorf("result %+v, want the winner's token %d", res, winner.ID)
		}
		if got := w.active(t, "prod"); !slices.Equal(got, []int64{winner.ID}) {
			t.Errorf("active %v, want only the winner's", got)
		}
		if !strings.Contains(w.report.text(), "wrote its token first") {
			t.Errorf("report: %s", w.report.text())
		}
	}
}

// TestInstallWaitsForARacingInstallAtTheLimit: at the limit, a token that
// another install writes into the Secret meanwhile is used. The limit may be
// seen before the create (two tokens listed) or only in GitLab's answer to
// it (the other install created its token in between, and the tokens listed
// after may be fewer again).
func TestInstallWaitsForARacingInstallAtTheLimit(t *testing.T) {
	for _, seenBy := range []string{"list", "create"} {
		w := newWorld(t)
		a := w.gl.AddAgent(w.project, "prod", w.user)
		if seenBy == "list" {
			w.gl.AddAgentToken(a, "one", w.user)
		} else {
			w.gl.Inject(fakegitlab.Fault{Route: tokensRoute, Nth: 1, Status: http.StatusBadRequest,
				Body: []byte(`{"message":{"base":["An agent can have only two active tokens at a time"]}}`), ContentType: "application/json"})
		}
		other := w.gl.AddAgentToken(a, "other-install", w.user)
		in := w.opts("prod").Input
		w.cluster.Hook(fake.GetSecret, 3, func() error {
			w.cluster.Put(secretObject(in, other.ID, other.Token))
			return nil
		})
		res, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
		if err != nil {
			t.Fatalf("limit seen by the %s: %v", seenBy, err)
		}
		if res.TokenID != other.ID || res.TokenCreated {
			t.Errorf("limit seen by the %s: result %+v, want the other install's token %d", seenBy, res, other.ID)
		}
	}
}

func TestInstallConfigFile(t *testing.T) {
	w := newWorld(t)
	path := agentconfig.Path("prod")
	w.gl.SetFile(w.project, "main", path, []byte("# ours\nobservability:\n  logging:\n    level: debug\n"))
	w.install(t, "prod")
	cfg, _ := w.gl.File(w.project, "main", path)
	if !strings.HasPrefix(string(cfg), "# ours\nobservability:\n  logging:\n    level: debug\n") || !strings.Contains(string(cfg), "user_access") {
		t.Errorf("merged file:\n%s", cfg)
	}

	w = newWorld(t)
	w.gl.SetFile(w.project, "main", path, []byte("ci_access: [\n"))
	_, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
	var cfe *ConfigFileError
	if !errors.As(err, &cfe) {
		t.Fatalf("a broken file: %v", err)
	}
	if len(w.active(t, "prod")) != 0 {
		t.Error("a token was created before the config step failed")
	}

	// A commit that conflicts (someone pushed) is merged again.
	w = newWorld(t)
	const commit = "POST /api/v4/projects/{id}/repository/files/{path}"
	w.gl.Inject(fakegitlab.Fault{Route: commit, Nth: 1, Status: http.StatusConflict})
	if res := w.install(t, "prod"); !res.ConfigCommitted || w.gl.Calls(commit) != 2 {
		t.Errorf("after a conflict: committed %v in %d calls, want 2", res.ConfigCommitted, w.gl.Calls(commit))
	}
}

func TestInstallGitLabRefusals(t *testing.T) {
	w := newWorld(t)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Enabled = false })
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")}); err == nil || !strings.Contains(err.Error(), "KAS") {
		t.Errorf("no KAS: %v", err)
	}
	w = newWorld(t)
	o := w.opts("prod")
	o.Project = gitlab.ProjectRef{Path: "no/such"}
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: o}); !gitlab.IsClass(err, gitlab.ClassNotFound) {
		t.Errorf("no project: %v", err)
	}
	w = newWorld(t)
	w.gl.Inject(fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/cluster_agents", Status: http.StatusForbidden})
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")}); !gitlab.IsClass(err, gitlab.ClassForbidden) {
		t.Errorf("registration refused: %v", err)
	}
}

func TestInstallNoWait(t *testing.T) {
	w := newWorld(t)
	w.connect = false
	o := InstallOptions{Options: w.opts("prod")}
	o.NoWait = true
	res, err := Install(context.Background(), w.env(), o)
	if err != nil || res.Connected || w.cluster.Count(fake.WaitRollout) != 0 {
		t.Errorf("no-wait: %+v, %v, %d waits", res, err, w.cluster.Count(fake.WaitRollout))
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"registry.gitlab.com/gitlab-org/cluster-integration/gitlab-agent/agentk:v17.3.1": "v17.3.1",
		"registry:5000/agentk":                             "",
		"registry:5000/agentk:v17.2.0":                     "v17.2.0",
		"agentk@sha256:" + strings.Repeat("a", 64):         "",
		"agentk:v18.0.0@sha256:" + strings.Repeat("b", 64): "v18.0.0",
		"not a reference":                                  "",
	} {
		if got := ImageTag(image); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestTagValue(t *testing.T) {
	digest := "sha256:" + strings.Repeat("b", 64)
	for image, want := range map[string]string{
		"registry.gitlab.com/gitlab-org/cluster-integration/gitlab-agent/agentk:v17.3.1": "v17.3.1",
		"agentk:v18.0.0@" + digest: "v18.0.0@" + digest,
		"agentk@" + digest:         "",
		"registry:5000/agentk":     "",
	} {
		if got := TagValue(image); got != want {
			t.Errorf("TagValue(%q) = %q, want %q", image, got, want)
		}
	}
}

// TestUpgradeKeepsADigestPin: the chart pins a digest with image.tag
// tag@sha256:...; an upgrade that does not set image.tag (here: replicas
// only) runs the same image, the digest included.
func TestUpgradeKeepsADigestPin(t *testing.T) {
	w := newWorld(t)
	pin := "v17.3.1@sha256:" + strings.Repeat("c", 64)
	o := w.opts("prod")
	o.Input.Values.Image.Tag, o.Input.Set = pin, manifest.Keys{manifest.KeyImageTag: true}
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: o}); err != nil {
		t.Fatal(err)
	}
	o = w.opts("prod")
	o.Input.Values.Replicas, o.Input.Set = 3, manifest.Keys{"replicas": true}
	if _, err := Upgrade(context.Background(), w.env(), o); err != nil {
		t.Fatal(err)
	}
	for _, ref := range w.cluster.Objects() {
		if ref.Kind != "Deployment" {
			continue
		}
		image, _, _ := unstructured.NestedSlice(w.cluster.Get(ref).Object, "spec", "template", "spec", "containers")
		if got := image[0].(map[string]any)["image"]; !strings.HasSuffix(got.(string), ":"+pin) {
			t.Errorf("after the upgrade the Deployment runs %v, want the pin %s", got, pin)
		}
	}
}
