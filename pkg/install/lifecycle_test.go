package install

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const revokeRoute = "DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens/{token_id}"

func TestUpgrade(t *testing.T) {
	w := newWorld(t)
	if _, err := Upgrade(context.Background(), w.env(), w.opts("prod")); err == nil || !strings.Contains(err.Error(), "run install first") {
		t.Fatalf("not installed: %v", err)
	}
	first := w.install(t, "prod")

	// Nothing asked: up to date, nothing applied, and no GitLab needed.
	env := w.env()
	env.GitLab = nil
	applied := len(w.cluster.Applied())
	res, err := Upgrade(context.Background(), env, w.opts("prod"))
	if err != nil || !res.UpToDate || len(w.cluster.Applied()) != applied {
		t.Fatalf("no change: %+v, %v", res, err)
	}

	// A dry run of a new version plans without applying.
	o := w.opts("prod")
	o.Input.Values.Image.Tag, o.Input.Set = "v17.4.0", manifest.Keys{manifest.KeyImageTag: true}
	o.DryRun = DryRunClient
	res, err = Upgrade(context.Background(), env, o)
	if err != nil || res.Plan == nil || res.Plan.Cluster.Counts()["changed"] == 0 || len(w.cluster.Applied()) != applied {
		t.Fatalf("dry run: %+v, %v", res, err)
	}

	// The new version: applied and rolled out; the KAS address and the
	// token stay as they run.
	o.DryRun = DryRunNone
	if res, err = Upgrade(context.Background(), env, o); err != nil || res.ObjectsChanged == 0 {
		t.Fatalf("upgrade: %+v, %v", res, err)
	}
	d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
	if run := RunningOf(d); run.Version != "v17.4.0" || run.KasAddress != "wss://kas.example.com" {
		t.Errorf("running %+v", run)
	}
	if id, _ := w.secret(t, "prod"); id != first.TokenID {
		t.Errorf("the Secret holds token %d, want %d", id, first.TokenID)
	}
	if !slices.Contains(w.report.phases, "rollout") {
		t.Errorf("phases %v", w.report.phases)
	}

	// A refused apply is an error; NoWait does not wait.
	o.Input.Values.Image.Tag = "v17.5.0"
	w.cluster.Fail(fake.Apply, len(w.cluster.Applied())+3, errors.New("admission webhook denied"))
	if _, err := Upgrade(context.Background(), env, o); err == nil || !strings.Contains(err.Error(), "admission webhook denied") {
		t.Errorf("refused: %v", err)
	}
	o.NoWait = true
	waits := w.cluster.Count(fake.WaitRollout)
	if _, err := Upgrade(context.Background(), env, o); err != nil || w.cluster.Count(fake.WaitRollout) != waits {
		t.Errorf("no-wait: %v", err)
	}
}

func TestRotate(t *testing.T) {
	w := newWorld(t)
	first := w.install(t, "prod")
	res, err := Rotate(context.Background(), w.env(), w.opts("prod"))
	if err != nil {
		t.Fatal(err)
	}
	if res.OldTokenID != first.TokenID || res.NewTokenID == first.TokenID {
		t.Errorf("result %+v", res)
	}
	if got := w.active(t, "prod"); !slices.Equal(got, []int64{res.NewTokenID}) {
		t.Errorf("active %v, want only the new %d", got, res.NewTokenID)
	}
	if id, tok := w.secret(t, "prod"); id != res.NewTokenID || tok != w.tokenValue(t, "prod", id) {
		t.Errorf("the Secret holds %d", id)
	}
	want := []string{"create token", "render", "apply", "rollout", "connection", "revoke old token"}
	if got := w.report.phases[len(w.report.phases)-len(want):]; !slices.Equal(got, want) {
		t.Errorf("phases %v, want them to end %v", w.report.phases, want)
	}
}

// TestConnectedWithGitLabsClockBehind: GitLab stamps the new token's use
// with its own clock, here 90 s behind this machine's; a token this run made
// cannot have been used before it, so its use is enough and install and
// rotate finish (before, both waited it out and revoked the working token).
func TestConnectedWithGitLabsClockBehind(t *testing.T) {
	w := newWorld(t)
	w.behind = 90 * time.Second
	first := w.install(t, "prod")
	if !first.Connected {
		t.Fatalf("install: %+v", first)
	}
	res, err := Rotate(context.Background(), w.env(), w.opts("prod"))
	if err != nil {
		t.Fatal(err)
	}
	if got := w.active(t, "prod"); !slices.Equal(got, []int64{res.NewTokenID}) || res.OldTokenID != first.TokenID {
		t.Errorf("active %v after the rotation %+v, want only the new token", got, res)
	}
	// A re-install that changes the objects and reuses the Secret's token:
	// its use is compared with its use before the apply, both GitLab's.
	time.Sleep(10 * time.Millisecond) // GitLab's next stamp is a later one
	o := w.opts("prod")
	o.Input.Values.Image.Tag, o.Input.Set = "v17.3.0", manifest.Keys{manifest.KeyImageTag: true}
	again, err := Install(context.Background(), w.env(), InstallOptions{Options: o})
	if err != nil || again.TokenCreated || again.ObjectsChanged == 0 || !again.Connected {
		t.Fatalf("a re-install reusing the token: %+v, %v", again, err)
	}
}

// TestRotateFailuresPutTheOldTokenBack fails rotation after the new token
// is in the Secret: the old token is put back and stays active, the new one
// is revoked.
func TestRotateFailuresPutTheOldTokenBack(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(w *world, o *Options)
		want  []string
		// stuck: putting the old token back fails too, so the Secret keeps
		// the new (revoked) token and the error says how to mend it.
		stuck bool
	}{
		{"the rollout cannot finish", func(w *world, _ *Options) {
			w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus {
				return kube.RolloutStatus{Desired: 2, Problem: "CrashLoopBackOff"}
			}
		}, []string{"CrashLoopBackOff", "was revoked", "is back in the Secret"}, false},
		{"agentk never connects with the new token", func(w *world, o *Options) {
			w.connect = false
			o.Timeout = 50 * time.Millisecond
		}, []string{"did not connect to KAS in time", "was revoked", "stays active and is back in the Secret"}, false},
		{"the rollout cannot finish, and the first try to put the old token back fails", func(w *world, _ *Options) {
			w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus {
				return kube.RolloutStatus{Desired: 2, Problem: "CrashLoopBackOff"}
			}
			w.cluster.Hook(fake.WaitRollout, w.cluster.Count(fake.WaitRollout)+1, func() error {
				w.cluster.Fail(fake.Apply, w.cluster.Count(fake.Apply)+1, errors.New("etcd is slow"))
				return nil
			})
		}, []string{"CrashLoopBackOff", "was revoked", "is back in the Secret"}, false},
		{"the apply is refused", func(w *world, _ *Options) {
			w.cluster.Fail(fake.Apply, len(w.cluster.Applied())+1, errors.New("refused"))
		}, []string{"updating the Secret and Deployment", "refused", "was revoked"}, false},
		{"the rollout cannot finish, and the cluster then refuses the old token back", func(w *world, _ *Options) {
			w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus {
				return kube.RolloutStatus{Desired: 2, Problem: "CrashLoopBackOff"}
			}
			// While the rotation waits for the rollout: the next three
			// applies, the first of each of the rollback's tries, fail.
			w.cluster.Hook(fake.WaitRollout, w.cluster.Count(fake.WaitRollout)+1, func() error {
				for i := 1; i <= 3; i++ {
					w.cluster.Fail(fake.Apply, w.cluster.Count(fake.Apply)+i, errors.New("etcd is down"))
				}
				return nil
			})
		}, []string{"CrashLoopBackOff", "putting the old token", "back in the Secret and Deployment failed too", "etcd is down", "both stay active",
			"rotate again ('kubectl gitlab-agent token rotate prod')"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			first := w.install(t, "prod")
			o := w.opts("prod")
			tt.setup(w, &o)
			_, err := Rotate(context.Background(), w.env(), o)
			failedSaying(t, "rotation", err, tt.want...)
			id, tok := w.secret(t, "prod")
			if tt.stuck {
				// The Secret holds the new token, which stays active beside
				// the old; the rotation the error names ends with one token,
				// in the Secret.
				if active := w.active(t, "prod"); len(active) != 2 || active[0] != first.TokenID || active[1] != id || tok != w.tokenValue(t, "prod", id) {
					t.Fatalf("after the failed rollback: active %v, the Secret holds %d", active, id)
				}
				w.cluster.Rollout = nil
				o := w.opts("prod")
				o.Yes = true
				res, err := Rotate(context.Background(), w.env(), o)
				if err != nil {
					t.Fatalf("rotate --yes after the failed rollback: %v", err)
				}
				if id, tok := w.secret(t, "prod"); !slices.Equal(w.active(t, "prod"), []int64{res.NewTokenID}) || id != res.NewTokenID || tok != w.tokenValue(t, "prod", id) {
					t.Errorf("after rotating again: active %v, the Secret holds %d, want only %d", w.active(t, "prod"), id, res.NewTokenID)
				}
				return
			}
			if got := w.active(t, "prod"); !slices.Equal(got, []int64{first.TokenID}) {
				t.Errorf("active %v, want only the old %d", got, first.TokenID)
			}
			if id != first.TokenID || tok != w.tokenValue(t, "prod", id) {
				t.Errorf("the Secret holds %d, want the old %d", id, first.TokenID)
			}
		})
	}
}

func TestRotateRefusals(t *testing.T) {
	w := newWorld(t)
	if _, err := Rotate(context.Background(), w.env(), w.opts("prod")); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("not installed: %v", err)
	}
	first := w.install(t, "prod")
	in := w.opts("prod").Input

	// A Secret without the token-id annotation (installed by hand).
	s := secretObject(in, 0, w.tokenValue(t, "prod", first.TokenID))
	s.SetAnnotations(nil)
	w.cluster.Put(s)
	if _, err := Rotate(context.Background(), w.env(), w.opts("prod")); err == nil || !strings.Contains(err.Error(), "names no token ID") {
		t.Errorf("unknown token: %v", err)
	}
	w.cluster.Put(secretObject(in, first.TokenID, w.tokenValue(t, "prod", first.TokenID)))

	// At the limit: consent needed to revoke the other token.
	other := w.gl.AddAgentToken(w.agent(t, "prod"), "other", w.user)
	_, err := Rotate(context.Background(), w.env(), w.opts("prod"))
	var ce *ConfirmationError
	if !errors.As(err, &ce) || !strings.Contains(ce.Would, "other") {
		t.Fatalf("at the limit: %v", err)
	}
	o := w.opts("prod")
	o.Yes = true
	res, err := Rotate(context.Background(), w.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.active(t, "prod"); !slices.Equal(got, []int64{res.NewTokenID}) || slices.Contains(got, other.ID) {
		t.Errorf("active %v", got)
	}

	// Someone writes the Secret during the rotation.
	w.cluster.Fail(fake.ClaimSecret, w.cluster.Count(fake.ClaimSecret)+1, kube.ErrSecretChanged)
	if _, err := Rotate(context.Background(), w.env(), w.opts("prod")); err == nil || !strings.Contains(err.Error(), "changed during the rotation") || !strings.Contains(err.Error(), "was revoked") {
		t.Errorf("raced: %v", err)
	}
	if got := w.active(t, "prod"); !slices.Equal(got, []int64{res.NewTokenID}) {
		t.Errorf("after a raced rotation: active %v", got)
	}

	// Revoking the old token fails: the new one runs, and the error says
	// how to revoke the old.
	w.gl.Inject(fakegitlab.Fault{Route: revokeRoute, Status: http.StatusForbidden})
	if _, err := Rotate(context.Background(), w.env(), w.opts("prod")); err == nil || !strings.Contains(err.Error(), "revoking the old token") {
		t.Errorf("revoke refused: %v", err)
	}
}

func TestUninstall(t *testing.T) {
	w := newWorld(t)
	res, err := Uninstall(context.Background(), w.env(), UninstallOptions{Options: w.opts("prod")})
	if err != nil || len(res.Deleted) != 0 || !strings.Contains(w.report.text(), "nothing of agent") {
		t.Fatalf("nothing installed: %+v, %v", res, err)
	}
	first := w.install(t, "prod")
	objects := len(w.cluster.Objects())

	// Declined: nothing goes.
	var asked string
	o := UninstallOptions{Options: w.opts("prod"), Confirm: func(q string) (bool, error) { asked = q; return false, nil }}
	if _, err := Uninstall(context.Background(), w.env(), o); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("declined: %v", err)
	}
	if !strings.Contains(asked, "Delete ") || !strings.Contains(asked, "Deployment") || len(w.cluster.Objects()) != objects {
		t.Errorf("asked %q; objects %d of %d", asked, len(w.cluster.Objects()), objects)
	}

	// Without GitLab, tokens cannot be revoked.
	env := w.env()
	env.GitLab = nil
	o = UninstallOptions{Options: w.opts("prod"), RevokeTokens: true}
	o.Yes = true
	if _, err := Uninstall(context.Background(), env, o); err == nil {
		t.Error("revoking without GitLab succeeded")
	}

	// A failed delete is an error.
	w.cluster.Fail(fake.DeleteAndWait, 1, errors.New("timed out"))
	if _, err := Uninstall(context.Background(), w.env(), o); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("delete failed: %v", err)
	}

	// With consent: objects, tokens and the registration go.
	o.DeleteAgent = true
	res, err = Uninstall(context.Background(), w.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != objects || !slices.Equal(res.RevokedTokens, []int64{first.TokenID}) || !res.AgentDeleted {
		t.Errorf("result %+v", res)
	}
	if len(w.cluster.Objects()) != 0 || len(w.gl.Agents(w.project)) != 0 {
		t.Errorf("left: %v objects, %d agents", w.cluster.Objects(), len(w.gl.Agents(w.project)))
	}
}

func TestStatus(t *testing.T) {
	w := newWorld(t)
	first := w.install(t, "prod")
	w.gl.AddAgent(w.project, "elsewhere", w.user)
	st, err := Status(context.Background(), w.env(), w.opts("prod").Project, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("%d agents", len(st))
	}
	byName := map[string]*AgentStatus{}
	for _, s := range st {
		byName[s.Agent.Name] = s
	}
	prod := byName["prod"]
	if prod.Verdict != Connected || prod.Cluster == nil || prod.Cluster.Version != "v17.3.1" || len(prod.Tokens) != 1 || prod.Tokens[0].ID != first.TokenID {
		t.Errorf("prod: %+v %+v", prod, prod.Cluster)
	}
	if byName["elsewhere"].Verdict != NotInstalled {
		t.Errorf("elsewhere: %s", byName["elsewhere"].Verdict)
	}

	// Without a cluster, a used token means it runs somewhere else.
	env := w.env()
	env.Cluster = nil
	st, err = Status(context.Background(), env, w.opts("prod").Project, []string{"prod"})
	if err != nil || len(st) != 1 || st[0].Verdict != Connected || len(st[0].Warnings) != 1 {
		t.Fatalf("no cluster: %+v, %v", st, err)
	}

	// A cluster that does not answer is a warning; GitLab's side still shows.
	w.cluster.Fail(fake.Reachable, w.cluster.Count(fake.Reachable)+1, errors.New("cannot reach the cluster at https://x"))
	st, err = Status(context.Background(), w.env(), w.opts("prod").Project, []string{"prod"})
	if err != nil || st[0].Verdict != Connected || len(st[0].Warnings) != 1 || !strings.Contains(st[0].Warnings[0], "cannot reach the cluster") {
		t.Fatalf("unreachable cluster: %+v, %v", st, err)
	}

	// An agentk more than a minor version ahead of KAS is warned about.
	o := w.opts("prod")
	o.Input.Values.Image.Tag, o.Input.Set = "v17.9.0", manifest.Keys{manifest.KeyImageTag: true}
	if _, err := Upgrade(context.Background(), w.env(), o); err != nil {
		t.Fatal(err)
	}
	st, _ = Status(context.Background(), w.env(), w.opts("prod").Project, []string{"prod"})
	if len(st[0].Warnings) != 1 || !strings.Contains(st[0].Warnings[0], "ahead of KAS") {
		t.Errorf("warnings %v", st[0].Warnings)
	}

	// Failures are errors.
	w.cluster.Fail(fake.FindDeployments, w.cluster.Count(fake.FindDeployments)+1, errors.New("forbidden"))
	if _, err := Status(context.Background(), w.env(), w.opts("prod").Project, []string{"prod"}); err == nil {
		t.Error("a failed lookup in the cluster is not an error")
	}
	if _, err := Status(context.Background(), w.env(), w.opts("prod").Project, []string{"nope"}); err == nil {
		t.Error("an unknown agent is not an error")
	}
}

// TestUpgradeMovesTheLayout: an agent installed with chart 2.6.2's layout
// moves to 2.15.0's; later, what 2.15.0 stops rendering goes, but only
// when it carries our labels.
func TestUpgradeMovesTheLayout(t *testing.T) {
	w := newWorld(t)
	old := w.opts("prod")
	var err error
	if old.Input.Values, err = manifest.LoadChart("2.6.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: old}); err != nil {
		t.Fatal(err)
	}
	svc := kube.Ref{APIVersion: "v1", Kind: "Service", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-service"}
	if w.cluster.Get(svc) != nil {
		t.Fatal("2.6.2 made the 2.15.0 Service")
	}
	res, err := Upgrade(context.Background(), w.env(), w.opts("prod"))
	if err != nil || res.UpToDate || len(res.Removed) != 0 {
		t.Fatalf("upgrade to 2.15.0: %+v, %v", res, err)
	}
	if w.cluster.Get(svc) == nil {
		t.Fatal("no Service after the upgrade to 2.15.0")
	}
	d := w.cluster.Get(kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-v2"})
	if env, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers"); !strings.Contains(fmt.Sprint(env), "GITLAB_AGENT_TELEMETRY_helm_chart_version") {
		t.Errorf("the Deployment is not 2.15.0's: %v", env)
	}

	// Someone else's object with the agent's labels, managed by Helm: kept.
	helmSvc := w.cluster.Get(svc).DeepCopy()
	helmSvc.SetName("prod-gitlab-agent-metrics")
	l := helmSvc.GetLabels()
	l["app.kubernetes.io/managed-by"] = "Helm"
	helmSvc.SetLabels(l)
	w.cluster.Put(helmSvc)

	// Observability off: 2.15.0 renders no Service, so ours goes; a dry
	// run says so first.
	o := w.opts("prod")
	o.Input.Values.Config.Observability.Enabled = false
	o.DryRun = DryRunClient
	res, err = Upgrade(context.Background(), w.env(), o)
	if err != nil || res.Plan == nil || strings.Join(res.Plan.Remove, " ") != "v1/Service/gitlab-agent-prod/prod-gitlab-agent-service" || w.cluster.Get(svc) == nil {
		t.Fatalf("dry run: %+v, %v", res.Plan, err)
	}
	o.DryRun = DryRunNone
	res, err = Upgrade(context.Background(), w.env(), o)
	if err != nil || strings.Join(res.Removed, " ") != "v1/Service/gitlab-agent-prod/prod-gitlab-agent-service" {
		t.Fatalf("observability off: %+v, %v", res, err)
	}
	if w.cluster.Get(svc) != nil {
		t.Error("the Service is still there")
	}
	if w.cluster.Get(kube.Ref{APIVersion: "v1", Kind: "Service", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-metrics"}) == nil {
		t.Error("a Service labelled by Helm was removed")
	}
	if id, _ := w.secret(t, "prod"); id == 0 {
		t.Error("the token Secret went")
	}
}

// TestUpgradeKeepsHowTheAgentReachesKAS: what the user does not give of how
// agentk reaches KAS (its CA, its headers) stays as it runs, as the address
// does; what the user gives wins; a CA the cluster no longer has is an
// error that says how to give it, unless the user gives one.
func TestUpgradeKeepsHowTheAgentReachesKAS(t *testing.T) {
	w := newWorld(t)
	o := w.opts("prod")
	o.Input.Values.Config.KasCaCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	o.Input.Values.Config.KasHeaders = []string{"X-Proxy-Auth: secret-ish", "X-Two: 2"}
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: o}); err != nil {
		t.Fatal(err)
	}
	running := func() Running {
		t.Helper()
		d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
		r, err := ReadRunning(context.Background(), w.cluster, d)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := running(); r.KasCA != o.Input.Values.Config.KasCaCert || !slices.Equal(r.KasHeaders, o.Input.Values.Config.KasHeaders) {
		t.Fatalf("installed: %+v", r)
	}

	// A new version alone: the CA and the headers stay.
	up := w.opts("prod")
	up.Input.Values.Image.Tag, up.Input.Set = "v17.4.0", manifest.Keys{manifest.KeyImageTag: true}
	if _, err := Upgrade(context.Background(), w.env(), up); err != nil {
		t.Fatal(err)
	}
	if r := running(); r.Version != "v17.4.0" || r.KasAddress != "wss://kas.example.com" || r.KasCA != o.Input.Values.Config.KasCaCert || !slices.Equal(r.KasHeaders, o.Input.Values.Config.KasHeaders) {
		t.Fatalf("after a version upgrade: %+v", r)
	}
	// The same KAS written otherwise (case, the default port) keeps them too.
	same := w.opts("prod")
	same.Input.Values.Config.KasAddress, same.Input.Set = "wss://KAS.example.com:443", manifest.Keys{manifest.KeyKasAddress: true}
	if _, err := Upgrade(context.Background(), w.env(), same); err != nil {
		t.Fatal(err)
	}
	if r := running(); r.KasCA == "" || len(r.KasHeaders) != 2 {
		t.Fatalf("the same KAS host: %+v", r)
	}

	// Given: the user's win, an empty list included.
	up.Input.Values.Config.KasHeaders = nil
	up.Input.Set = manifest.Keys{manifest.KeyKasHeaders: true}
	if _, err := Upgrade(context.Background(), w.env(), up); err != nil {
		t.Fatal(err)
	}
	if r := running(); len(r.KasHeaders) != 0 || r.KasCA == "" {
		t.Fatalf("headers removed by the user: %+v", r)
	}

	// The CA's ConfigMap gone: a ValueNeededError for the CA, unless one is given.
	w.cluster.Remove(kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent"})
	var vne *ValueNeededError
	if _, err := Upgrade(context.Background(), w.env(), w.opts("prod")); !errors.As(err, &vne) || vne.Key != manifest.KeyKasCaCert {
		t.Fatalf("CA gone: %v", err)
	}
	given := w.opts("prod")
	given.Input.Values.Config.KasCaCert = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
	given.Input.Set = manifest.Keys{manifest.KeyKasCaCert: true}
	if _, err := Upgrade(context.Background(), w.env(), given); err != nil {
		t.Fatal(err)
	}
	if r := running(); r.KasCA != given.Input.Values.Config.KasCaCert {
		t.Fatalf("a new CA: %+v", r)
	}

	// Another KAS host: the old one's CA and headers do not follow (a
	// header may hold a proxy's credential), and the report says so.
	moved := w.opts("prod")
	moved.Input.Values.Config.KasAddress, moved.Input.Set = "wss://other-kas.example.net", manifest.Keys{manifest.KeyKasAddress: true}
	back := w.opts("prod")
	back.Input.Values.Config.KasHeaders = []string{"X-Proxy-Auth: secret-ish"}
	back.Input.Set = manifest.Keys{manifest.KeyKasHeaders: true}
	if _, err := Upgrade(context.Background(), w.env(), back); err != nil {
		t.Fatal(err)
	}
	steps := len(w.report.lines)
	if _, err := Upgrade(context.Background(), w.env(), moved); err != nil {
		t.Fatal(err)
	}
	if r := running(); r.KasAddress != "wss://other-kas.example.net" || r.KasCA != "" || len(r.KasHeaders) != 0 {
		t.Fatalf("moved to another KAS: %+v", r)
	}
	if said := strings.Join(w.report.lines[steps:], "\n"); !strings.Contains(said, "config.kasCaCert, config.kasHeaders") {
		t.Errorf("the move was not reported: %q", said)
	}
}

// TestUpgradeFailuresKeepTheOldObjects: an upgrade that stops half-way
// removes nothing the old layout had, and says what failed; the same
// upgrade run again finishes.
func TestUpgradeFailuresKeepTheOldObjects(t *testing.T) {
	svc := kube.Ref{APIVersion: "v1", Kind: "Service", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-service"}
	for _, tt := range []struct {
		name  string
		setup func(w *world)
		want  []string
	}{
		{"the rollout cannot finish", func(w *world) {
			w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus {
				return kube.RolloutStatus{Desired: 2, Problem: "ImagePullBackOff"}
			}
		}, []string{"cannot roll out", "ImagePullBackOff"}},
		{"the removal is refused", func(w *world) {
			w.cluster.Fail(fake.DeleteAndWait, w.cluster.Count(fake.DeleteAndWait)+1, errors.New("forbidden"))
		}, []string{"removing v1/Service/gitlab-agent-prod/prod-gitlab-agent-service, which the new layout no longer has", "forbidden"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.install(t, "prod")
			if w.cluster.Get(svc) == nil {
				t.Fatal("no Service installed")
			}
			// Observability off: the new layout has no Service.
			o := w.opts("prod")
			o.Input.Values.Config.Observability.Enabled = false
			tt.setup(w)
			res, err := Upgrade(context.Background(), w.env(), o)
			failedSaying(t, "upgrade", err, tt.want...)
			if len(res.Removed) != 0 || w.cluster.Get(svc) == nil {
				t.Errorf("removed %v; the Service is there: %v", res.Removed, w.cluster.Get(svc) != nil)
			}
			w.cluster.Rollout = nil
			if res, err = Upgrade(context.Background(), w.env(), o); err != nil || strings.Join(res.Removed, " ") != "v1/Service/gitlab-agent-prod/prod-gitlab-agent-service" {
				t.Errorf("upgrade again: %+v, %v", res, err)
			}
		})
	}
}

// TestUninstallGitLabFailures: when GitLab refuses a revoke or the
// registration's delete, uninstall says so and keeps what it did; run
// again, it finishes what was left.
func TestUninstallGitLabFailures(t *testing.T) {
	const deleteAgentRoute = "DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}"
	for _, tt := range []struct {
		name  string
		fault fakegitlab.Fault
		// revoked: the tokens revoked by the failed run.
		revoked int
	}{
		{"the first revoke is refused", fakegitlab.Fault{Route: revokeRoute, Nth: 1, Status: http.StatusForbidden}, 0},
		{"the second revoke is refused", fakegitlab.Fault{Route: revokeRoute, Nth: 2, Status: http.StatusForbidden}, 1},
		{"the registration's delete is refused", fakegitlab.Fault{Route: deleteAgentRoute, Nth: 1, Status: http.StatusForbidden}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			first := w.install(t, "prod")
			second := w.gl.AddAgentToken(w.agent(t, "prod"), "laptop", w.user)
			o := UninstallOptions{Options: w.opts("prod"), RevokeTokens: true, DeleteAgent: true}
			o.Yes = true
			w.gl.Inject(tt.fault)
			res, err := Uninstall(context.Background(), w.env(), o)
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("uninstall with GitLab refusing: %+v, %v", res, err)
			}
			if len(res.Deleted) == 0 || len(w.cluster.Objects()) != 0 || len(res.RevokedTokens) != tt.revoked || res.AgentDeleted || len(w.gl.Agents(w.project)) != 1 {
				t.Errorf("after the failure: %+v; %d objects left, %d agents", res, len(w.cluster.Objects()), len(w.gl.Agents(w.project)))
			}
			w.gl.ClearFaults()
			res, err = Uninstall(context.Background(), w.env(), o)
			if err != nil || !res.AgentDeleted || len(w.gl.Agents(w.project)) != 0 {
				t.Fatalf("uninstall again: %+v, %v", res, err)
			}
			if tt.revoked < 2 && len(res.RevokedTokens) != 2-tt.revoked {
				t.Errorf("the second run revoked %v; the tokens were %d and %d", res.RevokedTokens, first.TokenID, second.ID)
			}
		})
	}
}

// TestTheSameAgentInTwoNamespaces: the two installs carry the same labels;
// upgrading or uninstalling one leaves the other's objects, cluster-scoped
// ones included, alone.
func TestTheSameAgentInTwoNamespaces(t *testing.T) {
	w := newWorld(t)
	w.install(t, "prod")
	other := w.opts("prod")
	other.Input.Namespace = "team-b"
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: other}); err != nil {
		t.Fatal(err)
	}
	var theirs []kube.Ref
	for _, ref := range w.cluster.Objects() {
		if ref.Namespace == "team-b" || ref.Name == "team-b" || strings.HasPrefix(ref.Name, "team-b:") {
			theirs = append(theirs, ref)
		}
	}
	clusterScoped := 0
	for _, ref := range theirs {
		if ref.Namespace == "" && ref.Kind != "Namespace" {
			clusterScoped++
		}
	}
	if clusterScoped == 0 {
		t.Fatalf("team-b's install has no cluster-scoped objects: %v", theirs)
	}
	stillThere := func(what string) {
		t.Helper()
		for _, ref := range theirs {
			if w.cluster.Get(ref) == nil {
				t.Errorf("%s removed team-b's %s", what, ref)
			}
		}
	}
	res, err := Upgrade(context.Background(), w.env(), w.opts("prod"))
	if err != nil || !res.UpToDate || len(res.Removed) != 0 {
		t.Errorf("upgrade of gitlab-agent-prod: %+v, %v", res, err)
	}
	stillThere("upgrade")
	o := UninstallOptions{Options: w.opts("prod")}
	o.Yes = true
	ures, err := Uninstall(context.Background(), w.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ures.Deleted {
		if strings.Contains(name, "team-b") {
			t.Errorf("uninstall of gitlab-agent-prod deleted %s", name)
		}
	}
	stillThere("uninstall")
}

// TestUnreachableClusterFirst: upgrade, rotate and uninstall say that the
// cluster does not answer before they read or change anything.
func TestUnreachableClusterFirst(t *testing.T) {
	w := newWorld(t)
	w.install(t, "prod")
	gone := errors.New("cannot reach the cluster at https://127.0.0.1:1")
	o := UninstallOptions{Options: w.opts("prod")}
	o.Yes = true
	for name, act := range map[string]func() error{
		"upgrade":   func() error { _, err := Upgrade(context.Background(), w.env(), w.opts("prod")); return err },
		"rotate":    func() error { _, err := Rotate(context.Background(), w.env(), w.opts("prod")); return err },
		"uninstall": func() error { _, err := Uninstall(context.Background(), w.env(), o); return err },
	} {
		calls, tokens := len(w.cluster.Calls()), len(w.gl.AgentTokens(w.agent(t, "prod")))
		w.cluster.Fail(fake.Reachable, w.cluster.Count(fake.Reachable)+1, gone)
		if err := act(); !errors.Is(err, gone) {
			t.Errorf("%s: %v", name, err)
		}
		if got := w.cluster.Calls()[calls:]; len(got) != 1 || len(w.gl.AgentTokens(w.agent(t, "prod"))) != tokens {
			t.Errorf("%s went on after the cluster did not answer: %v", name, got)
		}
	}
}

// TestDeleteOrderKeepsTheAgentAliveToTheEnd: through KAS the agent being
// uninstalled may carry the deletes; of the install's objects, what ends
// its run, its rights and its token at once goes last: the cluster RBAC and
// Namespace, the Deployment, the ClusterRoleBindings, its ServiceAccounts.
func TestDeleteOrderKeepsTheAgentAliveToTheEnd(t *testing.T) {
	w := newWorld(t)
	w.install(t, "prod")
	var objs []*unstructured.Unstructured
	for _, ref := range w.cluster.Objects() {
		objs = append(objs, w.cluster.Get(ref))
	}
	// The order the cluster lists them in: reversed, for the test's sake.
	slices.Reverse(objs)
	kube.DeleteOrder(objs)
	var kinds []string
	for _, o := range objs {
		if k := o.GetKind(); len(kinds) == 0 || kinds[len(kinds)-1] != k {
			kinds = append(kinds, k)
		}
	}
	got := strings.Join(kinds, " ")
	if !strings.HasSuffix(got, "ClusterRole Namespace Deployment ClusterRoleBinding ServiceAccount") || strings.Count(got, "Namespace") != 1 || strings.Count(got, "ServiceAccount") != 1 {
		t.Errorf("delete order by kind: %s", got)
	}
}

// TestInstallLostCommitAnswer: the config file's commit goes through but its
// answer is lost; the branch holding what was sent shows it went in, and
// install goes on. A commit that truly failed says what the run left.
func TestInstallLostCommitAnswer(t *testing.T) {
	const route = "POST /api/v4/projects/{id}/repository/files/{path}"
	for _, f := range []fakegitlab.Fault{
		{Route: route, Nth: 1, AfterWork: true, Status: 502},
		{Route: route, Nth: 1, AfterWork: true, Drop: true},
	} {
		w := newWorld(t)
		w.gl.Inject(f)
		res := w.install(t, "prod")
		if !res.ConfigCommitted || len(w.gl.Commits()) != 1 || !res.Connected {
			t.Errorf("%+v: %+v, %d commits", f, res, len(w.gl.Commits()))
		}
	}
	w := newWorld(t)
	w.gl.Inject(fakegitlab.Fault{Route: route, Status: 403})
	_, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
	failedSaying(t, "a refused commit", err, `agent "prod" stays registered`, "run install again to finish")
	w = newWorld(t)
	w.gl.Inject(fakegitlab.Fault{Route: route, Status: 500})
	_, err = Install(context.Background(), w.env(), InstallOptions{Options: w.opts("prod")})
	failedSaying(t, "a commit lost with nothing committed", err, "the commit may or may not have been made", `agent "prod" stays registered`)
}
