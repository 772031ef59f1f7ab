package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// TestAgentkVersionFromKAS: against a GitLab whose KAS is 19.6.0, install
// deploys agentk v19.6.0 and says why; a suffixed KAS version maps to a
// release that exists; upgrade moves a pinned agent to KAS's version when
// it has a GitLab credential and keeps it when not; token rotate changes
// neither the version, nor the replicas, nor the chart layout.
func TestAgentkVersionFromKAS(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	p := []string{"--project", "infra/agents"}
	kas := func(v string) { g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = v }) }
	deployment := func(ns, name string) *appsv1.Deployment {
		t.Helper()
		d, err := clientset(t).AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	running := func() (string, int32) {
		d := deployment("gitlab-agent-vv", "vv-gitlab-agent-v2")
		image := d.Spec.Template.Spec.Containers[0].Image
		return image[strings.LastIndex(image, ":")+1:], *d.Spec.Replicas
	}
	t.Cleanup(func() {
		for _, name := range []string{"vv", "vold"} {
			g.run(t, nil, append([]string{"uninstall", name, "--yes", "--revoke-tokens"}, p...)...)
		}
	})

	kas("19.6.0")
	chose := "agentk v19.6.0: the version of KAS at kas.example.com; the objects keep chart 2.15.0's layout (agentk v18.0.0, the newest chart followed): only the image is newer\n"
	r := g.run(t, nil, append([]string{"install", "vv", "--dry-run"}, p...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, chose) || !strings.Contains(r.stdout, "agentk:v19.6.0") {
		t.Fatalf("install --dry-run: %+v", r)
	}
	r = g.run(t, nil, append([]string{"install", "vv", "--dry-run", "-o", "json"}, p...)...)
	var doc struct {
		Agentk struct{ Tag, Source, KASVersion string } `json:"agentk"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Agentk.Tag != "v19.6.0" || doc.Agentk.Source != "kas" {
		t.Fatalf("install --dry-run -o json: %v, %+v", err, doc)
	}
	r = g.run(t, nil, append([]string{"install", "vv"}, p...)...)
	if tag, _ := running(); r.code != 0 || !strings.Contains(r.stderr, chose) || tag != "v19.6.0" {
		t.Fatalf("install: running %s: %+v", tag, r)
	}
	r = g.run(t, nil, append([]string{"status", "vv"}, p...)...)
	if r.code != 0 || strings.Contains(r.stdout, "minor version") {
		t.Errorf("status: %+v", r)
	}

	// Suffixed versions: a release that exists, and which one is said.
	kas("19.7.0-rc42")
	r = g.run(t, nil, append([]string{"install", "vv"}, p...)...)
	if tag, _ := running(); r.code != 0 || !strings.Contains(r.stdout, "up to date") || tag != "v19.6.0" ||
		!strings.Contains(r.stderr, "agentk v19.6.0: KAS at kas.example.com runs 19.7.0-rc42, a pre-release of 19.7.0; v19.6.0 is the newest release certain to exist before it") {
		t.Errorf("KAS 19.7.0-rc42: running %s: %+v", tag, r)
	}
	kas("19.6.1-ee")
	r = g.run(t, nil, append([]string{"install", "vv", "--dry-run"}, p...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "agentk v19.6.1: the release of KAS at kas.example.com, which gives its version as 19.6.1-ee") ||
		!strings.Contains(r.stdout, "+        image: registry.gitlab.com/gitlab-org/cluster-integration/gitlab-agent/agentk:v19.6.1\n") {
		t.Errorf("KAS 19.6.1-ee: %+v", r)
	}

	// Pinned before KAS, with 3 replicas.
	kas("19.6.0")
	if r = g.run(t, nil, "upgrade", "vv", "--agent-version", "v19.5.0", "--set", "replicas=3"); r.code != 0 {
		t.Fatalf("upgrade --agent-version: %+v", r)
	}
	// Without a GitLab credential upgrade keeps the version, and says so.
	r = g.run(t, []string{"GITLAB_TOKEN="}, "upgrade", "vv")
	if tag, n := running(); r.code != 0 || !strings.Contains(r.stdout, "up to date") || tag != "v19.5.0" || n != 3 ||
		!strings.Contains(r.stderr, "agentk v19.5.0: kept as the agent runs: no GitLab credential at hand") {
		t.Errorf("upgrade without a credential: running %s ×%d: %+v", tag, n, r)
	}
	// With one, it moves to KAS's; the dry run shows the move first.
	move := "agentk v19.6.0 (from v19.5.0): the version of KAS at kas.example.com"
	r = g.run(t, nil, "upgrade", "vv", "--dry-run")
	if tag, _ := running(); r.code != 0 || !strings.HasPrefix(r.stdout, move) || tag != "v19.5.0" {
		t.Errorf("upgrade --dry-run: running %s: %+v", tag, r)
	}
	r = g.run(t, nil, "upgrade", "vv")
	if tag, n := running(); r.code != 0 || !strings.Contains(r.stderr, move) || tag != "v19.6.0" || n != 3 {
		t.Errorf("upgrade: running %s ×%d: %+v", tag, n, r)
	}

	// A rotation keeps the version (KAS moved on), the replicas and the
	// layout.
	kas("19.7.0")
	r = g.run(t, nil, append([]string{"token", "rotate", "vv"}, p...)...)
	if tag, n := running(); r.code != 0 || tag != "v19.6.0" || n != 3 ||
		!strings.Contains(r.stderr, "agentk v19.6.0: kept as the agent runs; chart 2.15.0's layout, as it runs") || strings.Contains(r.stderr, "besides the token") {
		t.Errorf("token rotate: running %s ×%d: %+v", tag, n, r)
	}
	g.activeTokensHeld(t, "vv")

	if r = g.run(t, nil, append([]string{"install", "vold", "--chart-version", "2.6.2"}, p...)...); r.code != 0 {
		t.Fatalf("install --chart-version 2.6.2: %+v", r)
	}
	r = g.run(t, nil, append([]string{"token", "rotate", "vold"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "chart 2.6.2's layout, as it runs") || strings.Contains(r.stderr, "besides the token") {
		t.Errorf("token rotate of a 2.6.2 agent: %+v", r)
	}
	if _, err := clientset(t).CoreV1().Services("gitlab-agent-vold").Get(context.Background(), "vold-gitlab-agent-service", metav1.GetOptions{}); err == nil {
		t.Error("the rotation moved the 2.6.2 agent to 2.15.0's layout (its Service)")
	}
	if d := deployment("gitlab-agent-vold", "vold-gitlab-agent-v2"); d.Labels["app.kubernetes.io/version"] != "v17.3.1" {
		t.Errorf("the 2.6.2 agent's Deployment is labelled %v", d.Labels)
	}
}
