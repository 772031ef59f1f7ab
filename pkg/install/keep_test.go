package install

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// layered are w's options for agent name with the values a command line
// gives (so that they can be layered again for another chart).
func (w *world) layered(t *testing.T, name string, l manifest.Layers) Options {
	t.Helper()
	in, err := l.Input(name, "", func(string, manifest.FileKind) ([]byte, error) { return nil, fmt.Errorf("no files here") })
	if err != nil {
		t.Fatal(err)
	}
	o := w.opts(name)
	o.Input = in
	return o
}

// changedPaths lists the paths applying res would change, as "Kind path".
func changedPaths(res *diff.Result) []string {
	var out []string
	for _, o := range res.Objects {
		if o.Action == diff.Unchanged {
			continue
		}
		for _, p := range o.ChangedPaths {
			out = append(out, o.Kind+" "+p)
		}
	}
	return out
}

// A rotation at 3 a.m. changes the token only: not agentk's version, not
// the chart layout, not the replicas, image or placement the agent was
// installed with, though none is given again; unless asked.
func TestRotateKeepsTheAgentAsItRuns(t *testing.T) {
	w := newWorld(t)
	version := "v17.2.0"
	installed := w.layered(t, "prod", manifest.Layers{ChartVersion: "2.6.2", AgentVersion: &version, Sets: []string{
		"replicas=3", "image.repository=mirror.example.com/agentk", "nodeSelector.pool=agents",
		"tolerations[0].key=dedicated", "tolerations[0].operator=Exists", "resources.limits.memory=256Mi",
	}})
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: installed, NoConfig: true}); err != nil {
		t.Fatal(err)
	}
	deployment := kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-v2"}
	svc := kube.Ref{APIVersion: "v1", Kind: "Service", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-service"}
	before := w.cluster.Get(deployment).DeepCopy()

	// The plan changes the token and the pods' checksum of it, nothing else.
	o := w.layered(t, "prod", manifest.Layers{})
	o.DryRun = DryRunClient
	plan, err := Rotate(context.Background(), w.env(), o)
	if err != nil || plan.Plan == nil {
		t.Fatalf("dry run: %+v, %v", plan, err)
	}
	want := "Deployment .spec.template.metadata.annotations['checksum/token'] Secret .data.token"
	if got := strings.Join(changedPaths(plan.Plan.Cluster), " "); got != want {
		t.Errorf("the rotation would change %s; want only %s", got, want)
	}
	if v := plan.Agentk; v == nil || v.Tag != "v17.2.0" || v.Source != VersionRunning || v.Chart != "2.6.2" ||
		v.Line() != "agentk v17.2.0: kept as the agent runs; chart 2.6.2's layout, as it runs" {
		t.Errorf("agentk %+v", plan.Agentk)
	}

	o.DryRun = DryRunNone
	if _, err := Rotate(context.Background(), w.env(), o); err != nil {
		t.Fatal(err)
	}
	after := w.cluster.Get(deployment)
	for _, path := range [][]string{{"spec", "replicas"}, {"spec", "template", "spec", "containers"}, {"spec", "template", "spec", "nodeSelector"}, {"spec", "template", "spec", "tolerations"}} {
		b, _, _ := unstructured.NestedFieldNoCopy(before.Object, path...)
		a, _, _ := unstructured.NestedFieldNoCopy(after.Object, path...)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s changed:\n%v\n→\n%v", strings.Join(path, "."), b, a)
		}
	}
	if w.cluster.Get(svc) != nil {
		t.Error("the rotation moved the agent to chart 2.15.0's layout (its Service)")
	}
	if r := w.report.text(); !strings.Contains(r, "step: agentk v17.2.0: kept as the agent runs; chart 2.6.2's layout, as it runs") || strings.Contains(r, "besides the token") {
		t.Errorf("the rotation said:\n%s", r)
	}

	// Asked: the version and the layout move, and the line says so.
	asked := w.layered(t, "prod", manifest.Layers{ChartVersion: "2.15.0", AgentVersion: &version})
	res, err := Rotate(context.Background(), w.env(), asked)
	if err != nil || res.Agentk == nil || res.Agentk.Chart != "2.15.0" || !strings.Contains(res.Agentk.Line(), "chart 2.15.0's layout, as --chart-version asks") {
		t.Fatalf("rotate --chart-version 2.15.0: %+v, %v", res, err)
	}
	if w.cluster.Get(svc) == nil {
		t.Error("--chart-version 2.15.0 did not move the layout")
	}

	// A value given that the agent does not run with is applied, and said.
	w.report.lines = nil
	if _, err := Rotate(context.Background(), w.env(), w.layered(t, "prod", manifest.Layers{Sets: []string{"podAnnotations.team=infra"}})); err != nil {
		t.Fatal(err)
	}
	if r := w.report.text(); !strings.Contains(r, "warning: besides the token, the rotation changes apps/v1/Deployment/gitlab-agent-prod/prod-gitlab-agent-v2 .spec.template.metadata.annotations.team") {
		t.Errorf("no warning of the other change:\n%s", r)
	}

	// A value of the newer chart, for an agent in the older layout, says
	// how to move it.
	w2 := newWorld(t)
	old := w2.layered(t, "prod", manifest.Layers{ChartVersion: "2.6.2"})
	if _, err := Install(context.Background(), w2.env(), InstallOptions{Options: old, NoConfig: true}); err != nil {
		t.Fatal(err)
	}
	_, err = Rotate(context.Background(), w2.env(), w2.layered(t, "prod", manifest.Layers{Sets: []string{"revisionHistoryLimit=3"}}))
	failedSaying(t, "rotating a 2.6.2 agent with a 2.15.0 value", err, "runs chart 2.6.2's layout", "--chart-version", "revisionHistoryLimit")
}

// upgrade with no version moves the agent to KAS's, when GitLab answers
// for the KAS the agent dials; else it keeps the version and says why.
func TestUpgradeFollowsKAS(t *testing.T) {
	w := newWorld(t)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.6.0" })
	pinned := "v19.5.0"
	if _, err := Install(context.Background(), w.env(), InstallOptions{Options: w.layered(t, "prod", manifest.Layers{AgentVersion: &pinned}), NoConfig: true}); err != nil {
		t.Fatal(err)
	}
	running := func() string {
		d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
		return RunningOf(d).Version
	}
	upgrade := func(env Env, dry DryRun) *UpgradeResult {
		t.Helper()
		o := w.layered(t, "prod", manifest.Layers{})
		o.DryRun = dry
		res, err := Upgrade(context.Background(), env, o)
		if err != nil || res.Agentk == nil {
			t.Fatalf("upgrade: %+v, %v", res, err)
		}
		return res
	}

	// No GitLab, a GitLab whose KAS is another, a GitLab that fails: kept.
	noGitLab := w.env()
	noGitLab.GitLab = nil
	for _, tt := range []struct {
		name  string
		env   Env
		setup func()
		why   string
	}{
		{"no credential", noGitLab, func() {}, "agentk v19.5.0: kept as the agent runs: no GitLab credential at hand"},
		{"another KAS", w.env(), func() {
			w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = "wss://kas.elsewhere.example" })
		}, "agentk v19.5.0: kept as the agent runs: it dials wss://kas.example.com, not wss://kas.elsewhere.example"},
		{"GitLab fails", w.env(), func() {
			w.gl.Inject(fakegitlab.Fault{Route: "GET /api/v4/metadata", Status: http.StatusForbidden})
		}, "agentk v19.5.0: kept as the agent runs: KAS's version is not known"},
		{"a KAS behind the agent", w.env(), func() {
			w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.5.0-rc42" })
		}, "agentk v19.5.0: kept as the agent runs: it runs a newer release than KAS's v19.4.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			t.Cleanup(func() {
				w.gl.ClearFaults()
				w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL, m.KAS.Version = "wss://kas.example.com", "19.6.0" })
			})
			res := upgrade(tt.env, DryRunNone)
			if !res.UpToDate || res.Agentk.Source != VersionRunning || !strings.HasPrefix(res.Agentk.Line(), tt.why) || running() != "v19.5.0" {
				t.Errorf("%+v: %s (running %s)", res, res.Agentk.Line(), running())
			}
			if !strings.Contains(w.report.text(), "step: "+tt.why) {
				t.Errorf("upgrade did not say %q:\n%s", tt.why, w.report.text())
			}
		})
	}

	// A dry run shows the move; the upgrade makes it.
	res := upgrade(w.env(), DryRunClient)
	move := "agentk v19.6.0 (from v19.5.0): the version of KAS at kas.example.com"
	if res.Plan == nil || res.Plan.Agentk == nil || !strings.HasPrefix(res.Plan.Agentk.Line(), move) || running() != "v19.5.0" {
		t.Fatalf("dry run: %+v", res.Plan)
	}
	res = upgrade(w.env(), DryRunNone)
	if res.UpToDate || res.Agentk.Source != VersionFromKAS || res.Agentk.Was != "v19.5.0" || running() != "v19.6.0" {
		t.Errorf("upgrade: %+v, running %s", res.Agentk, running())
	}
	if !strings.Contains(w.report.text(), "step: "+move) {
		t.Errorf("upgrade did not say %q:\n%s", move, w.report.text())
	}

	// KAS on a pre-release of the next minor: its release before is what
	// runs, so nothing moves.
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.7.0-rc42" })
	if res = upgrade(w.env(), DryRunNone); !res.UpToDate || res.Agentk.Tag != "v19.6.0" || res.Agentk.Was != "" {
		t.Errorf("KAS 19.7.0-rc42: %+v", res.Agentk)
	}
}
