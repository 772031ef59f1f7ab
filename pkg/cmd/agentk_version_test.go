package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// Against a GitLab whose KAS is 19.6.0, install says the version it chose
// and why; upgrade, given a GitLab credential, moves an agent pinned
// before to it (its dry run shows the move), and without one keeps it and
// says so; token rotate keeps it.
func TestAgentkVersionInProcess(t *testing.T) {
	w := newInProcess(t)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.6.0" })
	chose := "agentk v19.6.0: the version of KAS at kas.example.com; the objects keep chart 2.15.0's layout (agentk v18.0.0, the newest chart followed): only the image is newer\n"

	code, out, errOut := w.run(t, "install", "prod", "--no-config", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, chose) {
		t.Errorf("install --dry-run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// Only the image follows KAS: a key of a newer chart is refused by name.
	code, _, errOut = w.run(t, "install", "prod", "--no-config", "--set", "config.someNewerKey=1")
	if code != 1 || !strings.Contains(errOut, "config.someNewerKey: unknown key; gitlab-agent chart 2.15.0, the version followed, has no such key (a newer chart's keys are not modelled yet") {
		t.Errorf("a newer chart's key: exit %d, stderr:\n%s", code, errOut)
	}
	code, _, errOut = w.run(t, "install", "prod", "--no-config")
	if code != 0 || !strings.Contains(errOut, chose) {
		t.Errorf("install: exit %d, stderr:\n%s", code, errOut)
	}

	// Pinned to 19.5.0; without a credential upgrade keeps it.
	if code, _, errOut = w.run(t, "install", "prod", "--no-config", "--agent-version", "v19.5.0"); code != 0 {
		t.Fatalf("install --agent-version: %s", errOut)
	}
	code, out, errOut = w.runBare(t, "upgrade", "prod")
	if code != 0 || !strings.Contains(out, "up to date") || !strings.Contains(errOut, "agentk v19.5.0: kept as the agent runs: no GitLab credential at hand") {
		t.Errorf("upgrade without GitLab: exit %d, %s%s", code, out, errOut)
	}

	gitlab := []string{"--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile}
	move := "agentk v19.6.0 (from v19.5.0): the version of KAS at kas.example.com"
	code, out, errOut = w.runBare(t, append([]string{"upgrade", "prod", "--dry-run"}, gitlab...)...)
	if code != 0 || !strings.HasPrefix(out, move) || !strings.Contains(out, "-        image: registry.gitlab.com/gitlab-org/cluster-integration/gitlab-agent/agentk:v19.5.0") {
		t.Errorf("upgrade --dry-run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = w.runBare(t, append([]string{"upgrade", "prod", "-o", "json"}, gitlab...)...)
	var res struct {
		Agentk struct{ Tag, Was, Source string } `json:"agentk"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Agentk.Tag != "v19.6.0" || res.Agentk.Was != "v19.5.0" || res.Agentk.Source != "kas" || !strings.Contains(errOut, move) {
		t.Errorf("upgrade: exit %d, %+v, stderr:\n%s", code, res, errOut)
	}

	// A rotation keeps it, whatever KAS runs now.
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.7.0" })
	code, out, errOut = w.run(t, "token", "rotate", "prod", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "agentk v19.6.0: kept as the agent runs; chart 2.15.0's layout, as it runs\n") {
		t.Errorf("token rotate --dry-run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
