package e2e

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUpgradeMovesA262AgentTo2150: an agent installed with chart 2.6.2's
// layout moves to 2.15.0's with upgrade, same Deployment, never below its
// replicas; diff then sees no drift against the default, and the old
// layout as a change.
func TestUpgradeMovesA262AgentTo2150(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	const ns, dep = "gitlab-agent-mv", "mv-gitlab-agent-v2"
	r := g.run(t, nil, "install", "mv", "--project", "infra/agents", "--chart-version", "2.6.2")
	if r.code != 0 {
		t.Fatalf("install with 2.6.2: %+v", r)
	}
	cs := clientset(t)
	if _, err := cs.CoreV1().Services(ns).Get(context.Background(), "mv-gitlab-agent-service", metav1.GetOptions{}); err == nil {
		t.Fatal("2.6.2's layout has a Service")
	}
	// What moving changes, before it is done.
	r = g.run(t, nil, "diff", "mv")
	if r.code != 1 || !strings.Contains(r.stdout, "GITLAB_AGENT_TELEMETRY_helm_chart_version") || !strings.Contains(r.stdout, "mv-gitlab-agent-service") {
		t.Fatalf("diff of a 2.6.2 agent against 2.15.0: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = g.run(t, nil, "diff", "mv", "--chart-version", "2.6.2"); r.code != 0 {
		t.Fatalf("diff against its own layout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	minAvail := watchAvailable(t, ns, dep)
	r = g.run(t, nil, "upgrade", "mv")
	if got := minAvail(); r.code != 0 || got < 2 {
		t.Fatalf("upgrade to 2.15.0: %+v (fewest available replicas %d)", r, got)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), dep, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["GITLAB_AGENT_TELEMETRY_helm_chart_version"] != "2.15.0" || env["GITLAB_AGENT_TELEMETRY_installation_method"] != "kubectl-gitlab-agent" {
		t.Errorf("the Deployment is not 2.15.0's: %v", env)
	}
	if _, err := cs.CoreV1().Services(ns).Get(context.Background(), "mv-gitlab-agent-service", metav1.GetOptions{}); err != nil {
		t.Errorf("no 2.15.0 Service after the upgrade: %v", err)
	}
	if r = g.run(t, nil, "diff", "mv"); r.code != 0 {
		t.Errorf("diff after the upgrade: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The same agent in another namespace carries the same labels; its
	// Namespace, ClusterRoles and bindings are not this install's to prune.
	other := runCmd(t, "glagent-fake-other-token\n", kubectl, "gitlab-agent", "render", "mv", "--token-file", "-",
		"--kas-address", "wss://kas.example.com", "-n", "gitlab-agent-mv-b")
	if other.code != 0 {
		t.Fatal(other.stderr)
	}
	if a := runCmd(t, other.stdout, kubectl, "apply", "--server-side", "-f", "-"); a.code != 0 {
		t.Fatal(a.stderr)
	}
	t.Cleanup(func() { runCmd(t, other.stdout, kubectl, "delete", "--wait=false", "-f", "-") })
	if r = g.run(t, nil, "diff", "mv", "--prune", "-o", "summary"); r.code != 0 || strings.Contains(r.stdout, "gitlab-agent-mv-b") {
		t.Errorf("diff --prune beside another namespace's install of the agent: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	g.activeTokensHeld(t, "mv")
}

// TestInstallAdoptsEitherChart: objects a chart install of 2.6.2 or 2.15.0
// made (our render, labelled as Helm labels them, applied by another field
// manager) are adopted by install, token and all.
func TestInstallAdoptsEitherChart(t *testing.T) {
	needCluster(t)
	for _, tc := range []struct{ name, chart string }{{"hlm-old", "2.6.2"}, {"hlm-new", "2.15.0"}} {
		t.Run(tc.chart, func(t *testing.T) {
			g := newGitLab(t)
			simulateAgentk(t, g)
			r := runCmd(t, "glagent-fake-helm-token\n", kubectl, "gitlab-agent", "render", tc.name, "--token-file", "-",
				"--kas-address", "wss://kas.example.com", "--chart-version", tc.chart)
			if r.code != 0 {
				t.Fatal(r.stderr)
			}
			helm := regexp.MustCompile(`(\n *)app.kubernetes.io/managed-by: kubectl-gitlab-agent`).
				ReplaceAllString(r.stdout, "${1}app.kubernetes.io/managed-by: Helm${1}helm.sh/chart: gitlab-agent-"+tc.chart)
			helm = strings.ReplaceAll(helm, "value: kubectl-gitlab-agent", "value: helm-chart")
			if a := runCmd(t, helm, kubectl, "apply", "--server-side", "--field-manager=helm", "-f", "-"); a.code != 0 {
				t.Fatal(a.stderr)
			}
			ns := "gitlab-agent-" + tc.name
			waitAvailable(t, ns, tc.name+"-gitlab-agent-v2", 2)
			if r = g.run(t, nil, "install", tc.name, "--project", "infra/agents"); r.code != 0 {
				t.Fatalf("install over a chart %s install: %+v", tc.chart, r)
			}
			out := runCmd(t, "", kubectl, "get", "deployments,secrets,services", "-n", ns, "-l", "app.kubernetes.io/instance="+tc.name,
				"-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.labels.app\.kubernetes\.io/managed-by}{"\n"}{end}`)
			lines := strings.Fields(out.stdout)
			sort.Strings(lines)
			want := []string{"Deployment/" + tc.name + "-gitlab-agent-v2=kubectl-gitlab-agent", "Secret/" + tc.name + "-gitlab-agent-token=kubectl-gitlab-agent",
				"Service/" + tc.name + "-gitlab-agent-service=kubectl-gitlab-agent"}
			if strings.Join(lines, " ") != strings.Join(want, " ") {
				t.Errorf("after adopting a %s install: %v, want %v", tc.chart, lines, want)
			}
			g.activeTokensHeld(t, tc.name)
		})
	}
}
