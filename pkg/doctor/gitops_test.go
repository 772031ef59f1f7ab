package doctor

import (
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// KAS 18.0 and later refuse an agent config with the removed gitops key:
// the agent never connects, so agent-config fails and says to move to
// Flux; before 18.0 (or when KAS's version is not known) it warns.
func TestAgentConfigGitOps(t *testing.T) {
	for _, tt := range []struct {
		kas, file string
		status    Status
		says      string
	}{
		{"18.0.0", "gitops:\n  manifest_projects:\n  - id: infra/agents\n", Fail, ".gitlab/agents/prod/config.yaml sets gitops.manifest_projects, which KAS 18.0.0 refuses (18.0 and later do): the agent never connects"},
		{"19.6.0", "gitops: {}\nci_access:\n  projects:\n  - id: infra/agents\n", Fail, "sets gitops, which KAS 19.6.0 refuses"},
		{"18.0.0-rc1", "gitops:\n  manifest_projects: []\n", Fail, "which KAS 18.0.0-rc1 refuses"},
		{"17.11.0", "gitops:\n  manifest_projects:\n  - id: infra/agents\n", Warn, "gitops.manifest_projects is deprecated: KAS 18.0 and later refuse a config with it"},
		{"", "gitops:\n  manifest_projects:\n  - id: infra/agents\n", Warn, "KAS 18.0 and later refuse a config with it"},
		{"19.6.0", "ci_access:\n  projects:\n  - id: infra/agents\n", Pass, "parses"},
	} {
		t.Run(tt.kas+" "+strings.Fields(tt.file)[0], func(t *testing.T) {
			w := newWorld(t, setup{})
			w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = tt.kas })
			w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml", []byte(tt.file))
			r := w.run(t, "prod")
			c := byID(r)["agent-config"]
			if c.Status != tt.status || !strings.Contains(c.Message, tt.says) {
				t.Errorf("agent-config: %s %q; want %s saying %q", c.Status, c.Message, tt.status, tt.says)
			}
			if tt.status != Pass {
				for _, s := range []string{"move its deployments to Flux", "kubectl gitlab-agent bootstrap", "Flux (flux bootstrap gitlab)", "remove gitops from .gitlab/agents/prod/config.yaml"} {
					if !strings.Contains(c.Fix, s) {
						t.Errorf("fix %q lacks %q", c.Fix, s)
					}
				}
			}
			if tt.status == Fail && r.Verdict != Broken {
				t.Errorf("verdict %s", r.Verdict)
			}
		})
	}
}
