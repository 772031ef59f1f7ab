package cmd

import (
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// install refuses, in one line, an agent config file that KAS 18.0 and
// later refuse (gitops), before anything is done.
func TestInstallRefusesGitOpsConfigInProcess(t *testing.T) {
	w := newInProcess(t)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.6.0" })
	w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml", []byte("gitops:\n  manifest_projects:\n  - id: infra/agents\n"))
	for _, args := range [][]string{{"install", "prod"}, {"install", "prod", "--no-config"}, {"install", "prod", "--dry-run"}} {
		code, out, errOut := w.run(t, args...)
		want := `error: .gitlab/agents/prod/config.yaml sets gitops.manifest_projects, which KAS 19.6.0 at kas.example.com refuses (18.0 and later do): agent "prod" would never connect; move its deployments to Flux (kubectl gitlab-agent bootstrap, to come; until then Flux (flux bootstrap gitlab)) and remove gitops from .gitlab/agents/prod/config.yaml` + "\n"
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", args, code, out, errOut, want)
		}
	}
	if len(w.gl.Agents(w.project)) != 0 || len(w.cluster.Applied()) != 0 {
		t.Error("a refused install changed something")
	}
}
