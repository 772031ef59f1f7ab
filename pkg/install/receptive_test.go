package install

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const (
	urlConfigsRoute   = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations"
	urlConfigDelRoute = "DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations/{url_configuration_id}"
	edgeURL           = "grpcs://edge.example.com:8182"
)

func receptiveOpts(w *world, name, url string) InstallOptions {
	return InstallOptions{Options: w.opts(name), Receptive: &ReceptiveOptions{URL: url}}
}

// urlConfigs are the fake's URL configurations of agent name.
func (w *world) urlConfigs(t *testing.T, name string) []fakegitlab.URLConfiguration {
	t.Helper()
	return w.gl.URLConfigurations(w.agent(t, name))
}

// apiJWT is what the agent's Secret holds under api-jwt (the chart's
// b64enc of config.api.jwtPublicKey, decoded as agentk reads it).
func (w *world) apiJWT(t *testing.T, name string) string {
	t.Helper()
	in := w.opts(name).Input
	s, err := w.cluster.GetSecret(context.Background(), in.Namespace, manifest.SecretName(in))
	if err != nil || s == nil {
		t.Fatalf("no Secret: %v", err)
	}
	return string(s.Data["api-jwt"])
}

func TestInstallReceptive(t *testing.T) {
	w := newWorld(t)
	res, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	if err != nil {
		t.Fatal(err)
	}
	ucs := w.urlConfigs(t, "edge")
	if len(ucs) != 1 || ucs[0].URL != edgeURL || !res.URLConfigurationCreated || res.URLConfiguration == nil || res.URLConfiguration.ID != ucs[0].ID {
		t.Fatalf("URL configurations %+v, result %+v", ucs, res)
	}
	// GitLab's public key, verbatim, is the file agentk reads.
	if got := w.apiJWT(t, "edge"); got != ucs[0].PublicKey || got == "" {
		t.Errorf("the Secret's api-jwt is %q, want GitLab's public key %q", got, ucs[0].PublicKey)
	}
	d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-edge", "edge-gitlab-agent-v2")
	if d == nil {
		t.Fatal("no Deployment applied")
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--api-jwt-file=/etc/agentk/secrets/api-jwt") || RunningOf(d).KasAddress != "" {
		t.Errorf("agentk's args %v: want a receptive agent's", args)
	}
	if !res.Connected || !slices.Contains(w.report.phases, "URL configuration") || !strings.Contains(w.report.text(), "created URL configuration") {
		t.Errorf("result %+v, phases %v, report:\n%s", res, w.report.phases, w.report.text())
	}

	// Again: the same URL configuration, no token, nothing applied.
	applied, tokens := len(w.cluster.Applied()), w.gl.Calls(tokensRoute)
	again, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	if err != nil {
		t.Fatal(err)
	}
	if !again.UpToDate || again.URLConfigurationCreated || again.URLConfiguration.ID != ucs[0].ID {
		t.Errorf("re-run: %+v", again)
	}
	if n := w.gl.Calls(urlConfigsRoute); n != 1 || len(w.urlConfigs(t, "edge")) != 1 || len(w.cluster.Applied()) != applied || w.gl.Calls(tokensRoute) != tokens {
		t.Errorf("a re-run changed something: %d creates of a URL configuration", n)
	}
}

// A GitLab without receptive agents: the error says so in one line, and
// neither GitLab nor the cluster is changed on the way (no token, no
// commit, nothing applied).
func TestInstallReceptiveWithoutReceptiveAgents(t *testing.T) {
	w := newWorld(t)
	w.gl.AddAgent(w.project, "edge", w.user)
	w.gl.SetReceptive(false)
	_, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	failedSaying(t, "install", err, "no receptive agents: they need GitLab Ultimate 17.4 or later")
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("not one line: %q", err)
	}
	if w.gl.Calls(tokensRoute) != 0 || len(w.gl.Commits()) != 0 || len(w.cluster.Applied()) != 0 || w.cluster.Count(fake.ClaimSecret) != 0 {
		t.Errorf("something was done: %d tokens created, %d commits, applied %v", w.gl.Calls(tokensRoute), len(w.gl.Commits()), w.cluster.Applied())
	}
}

// A step after the URL configuration fails: the token made is revoked and
// the error says the URL configuration stays (a re-run reuses it).
func TestInstallReceptiveFailureAfterURLConfiguration(t *testing.T) {
	w := newWorld(t)
	w.cluster.Fail(fake.DryRun, 1, errors.New("boom"))
	_, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	ucs := w.urlConfigs(t, "edge")
	if len(ucs) != 1 {
		t.Fatalf("URL configurations %+v", ucs)
	}
	failedSaying(t, "install", err, "boom", "was revoked", "its URL configuration "+itoa(ucs[0].ID)+" stays")
	if a := w.active(t, "edge"); len(a) != 0 {
		t.Errorf("active tokens left: %v", a)
	}
	res, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	if err != nil || res.URLConfigurationCreated || len(w.urlConfigs(t, "edge")) != 1 || w.apiJWT(t, "edge") != ucs[0].PublicKey {
		t.Errorf("the re-run: %+v, %v", res, err)
	}

	// Before a token: the error still says what stays.
	w = newWorld(t)
	w.gl.AddAgent(w.project, "edge", w.user)
	w.gl.SetFile(w.project, "main", ".gitlab/agents/edge/config.yaml", []byte("ci_access: [\n"))
	_, err = Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	failedSaying(t, "install", err, "its URL configuration "+itoa(w.urlConfigs(t, "edge")[0].ID)+" stays")
}

// An agent receptive at another URL: refused, saying how to replace it;
// Replace does.
func TestInstallReceptiveOtherURL(t *testing.T) {
	w := newWorld(t)
	old := w.gl.AddURLConfiguration(w.gl.AddAgent(w.project, "edge", w.user), "grpcs://old.example.com:8182")
	_, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL))
	var conflict *ReceptiveConflictError
	if !errors.As(err, &conflict) || conflict.Have.ID != old.ID {
		t.Fatalf("err = %v", err)
	}
	failedSaying(t, "install", err, "grpcs://old.example.com:8182", edgeURL, "GitLab keeps one per agent", "url_configurations/"+itoa(old.ID))
	if w.gl.Calls(tokensRoute) != 0 || len(w.cluster.Applied()) != 0 || len(w.urlConfigs(t, "edge")) != 1 {
		t.Error("the refused install changed something")
	}

	o := receptiveOpts(w, "edge", edgeURL)
	o.Receptive.Replace = true
	o.DryRun = DryRunClient
	res, err := Install(context.Background(), w.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(res.Plan.GitLab, "\n")
	if !strings.Contains(plan, "delete URL configuration "+itoa(old.ID)) || !strings.Contains(plan, "create a URL configuration") || w.urlConfigs(t, "edge")[0].ID != old.ID {
		t.Errorf("dry run's plan:\n%s", plan)
	}

	o.DryRun = DryRunNone
	res, err = Install(context.Background(), w.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	ucs := w.urlConfigs(t, "edge")
	if len(ucs) != 1 || ucs[0].URL != edgeURL || ucs[0].ID == old.ID || w.apiJWT(t, "edge") != ucs[0].PublicKey || !res.URLConfigurationCreated {
		t.Errorf("after replacing: %+v, result %+v", ucs, res)
	}
	// With the one asked for, Replace replaces nothing.
	if _, err := Install(context.Background(), w.env(), o); err != nil || w.gl.Calls(urlConfigDelRoute) != 1 || w.urlConfigs(t, "edge")[0].ID != ucs[0].ID {
		t.Errorf("the re-run with Replace: %v", err)
	}
}

func TestInstallReceptiveDryRun(t *testing.T) {
	w := newWorld(t)
	o := receptiveOpts(w, "edge", edgeURL)
	o.DryRun = DryRunClient
	res, err := Install(context.Background(), w.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(res.Plan.GitLab, "\n"); !strings.Contains(plan, `create a URL configuration for agent "edge" (KAS dialling `+edgeURL+`)`) {
		t.Errorf("plan:\n%s", plan)
	}
	if len(w.gl.Agents(w.project)) != 0 || w.gl.Calls(urlConfigsRoute) != 0 || len(w.cluster.Applied()) != 0 {
		t.Error("the dry run changed something")
	}
}

func TestStatusAndUninstallOfReceptiveAgent(t *testing.T) {
	w := newWorld(t)
	if _, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL)); err != nil {
		t.Fatal(err)
	}
	uc := w.urlConfigs(t, "edge")[0]
	st, err := Status(context.Background(), w.env(), w.opts("edge").Project, []string{"edge"})
	if err != nil || st[0].Receptive == nil || st[0].Receptive.URL != edgeURL || st[0].Receptive.ID != uc.ID {
		t.Fatalf("status: %+v %v", st, err)
	}
	// A GitLab without receptive agents: not receptive, no error.
	w.gl.SetReceptive(false)
	if st, err := Status(context.Background(), w.env(), w.opts("edge").Project, []string{"edge"}); err != nil || st[0].Receptive != nil {
		t.Fatalf("status without receptive agents: %+v %v", st, err)
	}
	w.gl.SetReceptive(true)

	o := UninstallOptions{Options: w.opts("edge"), DeleteAgent: true}
	o.Yes, o.DryRun = true, DryRunClient
	res, err := Uninstall(context.Background(), w.env(), o)
	if err != nil || !slices.Equal(res.DeletedURLConfigurations, []int64{uc.ID}) || w.gl.Calls(urlConfigDelRoute) != 0 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	o.DryRun = DryRunNone
	res, err = Uninstall(context.Background(), w.env(), o)
	if err != nil || !res.AgentDeleted || !slices.Equal(res.DeletedURLConfigurations, []int64{uc.ID}) {
		t.Fatalf("uninstall: %+v %v", res, err)
	}
	if n := w.gl.Calls(urlConfigDelRoute); n != 1 {
		t.Errorf("%d deletes of the URL configuration, want 1", n)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Upgrade and rotation keep a receptive agent receptive, with GitLab's key:
// install took them from GitLab, as it took the KAS address.
func TestUpgradeAndRotateKeepTheAgentReceptive(t *testing.T) {
	w := newWorld(t)
	if _, err := Install(context.Background(), w.env(), receptiveOpts(w, "edge", edgeURL)); err != nil {
		t.Fatal(err)
	}
	key := w.urlConfigs(t, "edge")[0].PublicKey
	receptive := func(what string) {
		t.Helper()
		d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-edge", "edge-gitlab-agent-v2")
		if run := RunningOf(d); !run.Receptive || run.APIJWTFile == "" || run.KasAddress != "" || w.apiJWT(t, "edge") != key {
			t.Errorf("after %s: running %+v, api-jwt %q, want receptive with GitLab's key %q", what, run, w.apiJWT(t, "edge"), key)
		}
	}
	res, err := Upgrade(context.Background(), w.env(), w.opts("edge"))
	if err != nil || !res.UpToDate {
		t.Errorf("upgrade with nothing new: %+v %v", res, err)
	}
	receptive("upgrade")
	if _, err := Rotate(context.Background(), w.env(), w.opts("edge")); err != nil {
		t.Fatal(err)
	}
	receptive("token rotation")
	// Values that say otherwise win.
	o := w.opts("edge")
	o.Input.Set = manifest.Keys{manifest.KeyReceptiveEnabled: true}
	if _, err := Upgrade(context.Background(), w.env(), o); err != nil {
		t.Fatal(err)
	}
	d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-edge", "edge-gitlab-agent-v2")
	if RunningOf(d).Receptive {
		t.Error("config.receptive.enabled=false did not turn receptive mode off")
	}
}
