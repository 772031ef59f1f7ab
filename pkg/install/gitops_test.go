package install

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// KAS 18.0 and later refuse an agent config with gitops: install stops
// before it registers the agent, creates a token or applies anything, with
// or without --no-config, and says to move to Flux; an older KAS installs.
func TestInstallRefusesAConfigKASRefuses(t *testing.T) {
	const stale = "gitops:\n  manifest_projects:\n  - id: infra/agents\n"
	for _, tt := range []struct {
		name     string
		kas      string
		file     string
		dry      DryRun
		noConfig bool
		refused  bool
	}{
		{"KAS 19.6", "19.6.0", stale, DryRunNone, false, true},
		{"KAS 18.0 pre-release", "18.0.0-rc2", "gitops: {}\n", DryRunNone, false, true},
		{"no-config", "19.6.0", stale, DryRunNone, true, true},
		{"dry run", "19.6.0", stale, DryRunClient, false, true},
		{"KAS 17", "17.11.0", stale, DryRunNone, false, false},
		{"no gitops", "19.6.0", "ci_access:\n  projects:\n  - id: infra/agents\n", DryRunNone, false, false},
		{"broken file, no-config", "19.6.0", "ci_access: [\n", DryRunNone, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = tt.kas })
			w.gl.SetFile(w.project, "main", agentconfig.Path("prod"), []byte(tt.file))
			o := w.opts("prod")
			o.DryRun = tt.dry
			commits := len(w.gl.Commits())
			_, err := Install(context.Background(), w.env(), InstallOptions{Options: o, NoConfig: tt.noConfig})
			var sce *StaleConfigError
			if !tt.refused {
				if err != nil {
					t.Fatalf("install: %v", err)
				}
				return
			}
			if !errors.As(err, &sce) {
				t.Fatalf("install: %v, want a refusal of the config", err)
			}
			for _, s := range []string{".gitlab/agents/prod/config.yaml sets gitops", "which KAS " + tt.kas + " at kas.example.com refuses (18.0 and later do)", `agent "prod" would never connect`, "Flux (kubectl gitlab-agent bootstrap, to come; until then Flux (flux bootstrap gitlab))"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the refusal lacks %q: %v", s, err)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the refusal is more than one line: %q", err)
			}
			if len(w.gl.Agents(w.project)) != 0 || len(w.gl.Commits()) != commits || len(w.cluster.Applied()) != 0 || w.gl.Calls(tokensRoute) != 0 {
				t.Errorf("a refused install changed something: agents %d, commits %d→%d, applied %d, tokens created %d",
					len(w.gl.Agents(w.project)), commits, len(w.gl.Commits()), len(w.cluster.Applied()), w.gl.Calls(tokensRoute))
			}
		})
	}
}
