package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const (
	urlConfigsRoute   = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations"
	urlConfigDelRoute = "DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations/{url_configuration_id}"
)

// agentNamed is the fake's agent name; nil when it is not registered.
func (g *gitlabEnv) agentNamed(name string) *fakegitlab.Agent {
	for _, a := range g.fake.Agents(g.project) {
		if a.Name == name {
			return &a
		}
	}
	return nil
}

// leftInCluster lists the objects with the install's labels.
func leftInCluster(t *testing.T, instance string) string {
	t.Helper()
	r := runCmd(t, "", kubectl, "get", "all,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,namespaces", "-A", "-l", "app.kubernetes.io/instance="+instance, "-o", "name")
	return strings.TrimSpace(r.stdout)
}

// TestInstallReceptive: install --receptive-url makes one URL configuration
// in GitLab, puts GitLab's public key where the chart does (the Secret's
// api-jwt, the file agentk's --api-jwt-file reads), connects, and changes
// nothing when run again; status shows it; uninstall --delete-agent
// deletes it.
func TestInstallReceptive(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	p := []string{"--project", "infra/agents"}
	const ns, url = "gitlab-agent-rcv", "grpcs://rcv.example.com:8182"
	install := append([]string{"install", "rcv", "--receptive-url", url}, p...)

	r := g.run(t, nil, append(install, "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, `GitLab: would create a URL configuration for agent "rcv" (KAS dialling `+url+`)`) || g.agentNamed("rcv") != nil {
		t.Fatalf("dry run: %+v", r)
	}

	r = g.run(t, nil, install...)
	if r.code != 0 || !strings.Contains(r.stdout, `agent "rcv" is installed in namespace gitlab-agent-rcv and connected`) ||
		!strings.Contains(r.stdout, "it is receptive: KAS dials it at "+url) {
		t.Fatalf("install: %+v", r)
	}
	a := g.agentNamed("rcv")
	ucs := g.fake.URLConfigurations(a)
	if len(ucs) != 1 || ucs[0].URL != url || ucs[0].PublicKey == "" {
		t.Fatalf("URL configurations in GitLab: %+v", ucs)
	}
	cs := clientset(t)
	s, err := cs.CoreV1().Secrets(ns).Get(context.Background(), "rcv-gitlab-agent-token", metav1.GetOptions{})
	if err != nil || string(s.Data["api-jwt"]) != ucs[0].PublicKey {
		t.Fatalf("the Secret's api-jwt is not GitLab's public key %q: %v", ucs[0].PublicKey, err)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "rcv-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--api-jwt-file=/etc/agentk/secrets/api-jwt") || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--kas-address") }) {
		t.Errorf("agentk's args %v: want a receptive agent's", args)
	}

	// Again: no second URL configuration, no token, no apply.
	before := g.snapshot(t, ns)
	r = g.run(t, nil, install...)
	if r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("re-run: %+v", r)
	}
	if after := g.snapshot(t, ns); after != before || g.fake.Calls(urlConfigsRoute) != 1 || len(g.fake.URLConfigurations(a)) != 1 {
		t.Fatalf("a re-run changed something:\nbefore %+v\nafter  %+v\n%d creates of a URL configuration", before, after, g.fake.Calls(urlConfigsRoute))
	}

	// upgrade sees it as it runs: receptive, with GitLab's key.
	r = g.run(t, nil, "upgrade", "rcv")
	if after := g.snapshot(t, ns); r.code != 0 || !strings.Contains(r.stdout, "up to date") || after != before {
		t.Fatalf("upgrade: %+v\nbefore %+v\nafter  %+v", r, before, after)
	}

	r = g.run(t, nil, append([]string{"status", "rcv", "--no-doctor"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Receptive  KAS dials the agent at "+url) || !strings.Contains(r.stdout, "Verdict    connected") {
		t.Fatalf("status: %+v", r)
	}
	r = g.run(t, nil, append([]string{"status", "rcv", "--no-doctor", "-o", "json"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"url": "`+url+`"`) {
		t.Fatalf("status -o json: %+v", r)
	}

	// Another URL: refused, saying how to replace it; nothing changes.
	r = g.run(t, nil, append([]string{"install", "rcv", "--receptive-url", "grpcs://elsewhere.example.com:8182"}, p...)...)
	wantError(t, r, "already has URL configuration", "--receptive-replace")
	if after := g.snapshot(t, ns); after != before || len(g.fake.URLConfigurations(a)) != 1 {
		t.Fatalf("the refused install changed something:\nbefore %+v\nafter  %+v", before, after)
	}

	r = g.run(t, nil, append([]string{"uninstall", "rcv", "--yes", "--delete-agent"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "its URL configuration deleted, its registration deleted") {
		t.Fatalf("uninstall: %+v", r)
	}
	if g.fake.Calls(urlConfigDelRoute) != 1 || g.agentNamed("rcv") != nil {
		t.Errorf("after uninstall --delete-agent: %d deletes of the URL configuration", g.fake.Calls(urlConfigDelRoute))
	}
	if left := leftInCluster(t, "rcv"); left != "" {
		t.Errorf("left after uninstall:\n%s", left)
	}
}

// TestInstallReceptiveWithoutReceptiveAgents: a GitLab without them (not
// Ultimate, older than 17.4) says so in one line; nothing is applied and no
// token is left.
func TestInstallReceptiveWithoutReceptiveAgents(t *testing.T) {
	needCluster(t)
	g := newGitLab(t)
	g.fake.SetReceptive(false)
	r := g.run(t, nil, "install", "norcv", "--project", "infra/agents", "--receptive-url", "grpcs://norcv.example.com:8182", "--timeout", "20s")
	wantError(t, r, "no receptive agents: they need GitLab Ultimate 17.4 or later")
	if n := strings.Count(r.stderr, "error:"); n != 1 {
		t.Errorf("%d error lines:\n%s", n, r.stderr)
	}
	if left := leftInCluster(t, "norcv"); left != "" {
		t.Errorf("applied:\n%s", left)
	}
	if a := g.agentNamed("norcv"); a != nil && len(g.fake.AgentTokens(a)) != 0 {
		t.Errorf("tokens made: %+v", g.fake.AgentTokens(a))
	}
	g.activeTokensHeld(t, "norcv")
}
