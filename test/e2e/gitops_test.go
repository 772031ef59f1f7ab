package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
)

const staleConfig = "gitops:\n  manifest_projects:\n  - id: infra/agents\nci_access:\n  projects:\n  - id: infra/agents\n"

// gitopsGitLab is a GitLab whose KAS (a stand-in) is 19.6.0 and whose
// agent "flux" has a config file with the removed gitops key.
func gitopsGitLab(t *testing.T) *gitlabEnv {
	g := newGitLab(t)
	ep := fakekas.NewAgentEndpoint(fakekas.WebSocket, "/")
	t.Cleanup(ep.Close)
	g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL, m.KAS.Version = ep.URL, "19.6.0" })
	g.fake.SetFile(g.project, "main", ".gitlab/agents/flux/config.yaml", []byte(staleConfig))
	return g
}

// TestDoctorFailsOnGitOpsWithKAS18: doctor's agent-config check fails (not
// warns) on gitops when KAS is 18.0 or later, its fix the move to Flux.
func TestDoctorFailsOnGitOpsWithKAS18(t *testing.T) {
	t.Parallel()
	g := gitopsGitLab(t)
	r := g.run(t, nil, "doctor", "flux", "--project", "infra/agents", "-o", "json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor -o json: %v: %+v", err, r)
	}
	st, msg := rep.check("agent-config")
	if r.code != 1 || rep.Verdict != "broken" || st != "fail" ||
		!strings.Contains(msg, ".gitlab/agents/flux/config.yaml sets gitops.manifest_projects, which KAS 19.6.0 refuses (18.0 and later do): the agent never connects") ||
		!strings.Contains(msg, "kubectl gitlab-agent bootstrap, to come") || !strings.Contains(msg, "Flux (flux bootstrap gitlab)") {
		t.Errorf("doctor: exit %d, %s, agent-config %s %q", r.code, rep.Verdict, st, msg)
	}
	// KAS 17: a warning.
	g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "17.11.0" })
	r = g.run(t, nil, "doctor", "flux", "--project", "infra/agents", "-o", "json")
	rep = doctorReport{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor -o json: %v: %+v", err, r)
	}
	if st, msg := rep.check("agent-config"); st != "warn" || !strings.Contains(msg, "KAS 18.0 and later refuse a config with it") {
		t.Errorf("KAS 17.11.0: agent-config %s %q", st, msg)
	}
}

// TestInstallRefusesGitOpsWithKAS18: install stops, in one line, before it
// registers the agent, creates a token or applies anything.
func TestInstallRefusesGitOpsWithKAS18(t *testing.T) {
	needCluster(t)
	g := gitopsGitLab(t)
	for _, args := range [][]string{{"install", "flux"}, {"install", "flux", "--no-config"}, {"install", "flux", "--dry-run"}} {
		r := g.run(t, nil, append(args, "--project", "infra/agents")...)
		wantError(t, r, ".gitlab/agents/flux/config.yaml sets gitops.manifest_projects, which KAS 19.6.0 at", `agent "flux" would never connect`,
			"move its deployments to Flux (kubectl gitlab-agent bootstrap, to come; until then Flux (flux bootstrap gitlab))")
		if strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: more than the error line:\n%s", args, r.stderr)
		}
	}
	if len(g.fake.Agents(g.project)) != 0 || len(g.fake.Commits()) != 0 {
		t.Errorf("a refused install changed GitLab: %d agents, %d commits", len(g.fake.Agents(g.project)), len(g.fake.Commits()))
	}
	if _, err := clientset(t).CoreV1().Namespaces().Get(context.Background(), "gitlab-agent-flux", metav1.GetOptions{}); err == nil {
		t.Error("a refused install created the agent's namespace")
	}
}
