package cmd

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// sharedWorld: infra/agents (the in-process world's project) holds agents
// shared with infra/team/app through the group infra and by name; app has
// an agent of its own; one agent names another project.
func sharedWorld(t *testing.T) (*inProcess, *fakegitlab.Project) {
	w := newInProcess(t)
	app := w.gl.AddProject("infra/team/app")
	w.gl.SetRole(app, w.user, fakegitlab.Developer)
	w.gl.SetAgentConfig(w.gl.AddAgent(w.project, "prod", w.user), `
ci_access:
  groups:
  - id: infra
    access_as: {agent: {}}
    environments: [production, "review/*"]
    resource_management: {enabled: true}
user_access:
  access_as: {user: {}}
  groups: [{id: infra/team}]
`)
	w.gl.SetAgentConfig(w.gl.AddAgent(w.project, "staging", w.user), `
ci_access:
  projects: [{id: infra/team/app, default_namespace: app}]
`)
	w.gl.SetAgentConfig(w.gl.AddAgent(w.project, "other", w.user), `
ci_access:
  projects: [{id: infra/team/not-app}]
user_access:
  projects: [{id: infra/team/not-app}]
`)
	w.gl.AddAgent(app, "own", w.user)
	return w, app
}

func (w *inProcess) runProject(t *testing.T, project string, args ...string) (int, string, string) {
	t.Helper()
	return w.runBare(t, append(args, "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--project", project)...)
}

func TestAgentListShared(t *testing.T) {
	w, app := sharedWorld(t)
	for _, project := range []string{"infra/team/app", strconv.FormatInt(app.ID, 10)} {
		code, out, errOut := w.runProject(t, project, "agent", "list", "--shared", "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var got struct {
			Agents []struct {
				Project            string         `json:"project"`
				Name               string         `json:"name"`
				ID                 int64          `json:"id"`
				Access             string         `json:"access"`
				AccessAs           *string        `json:"accessAs"`
				Environments       []string       `json:"environments"`
				ResourceManagement bool           `json:"resourceManagement"`
				Config             map[string]any `json:"config"`
			} `json:"agents"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var rows []string
		for _, a := range got.Agents {
			if a.ID == 0 || a.Environments == nil || a.Config == nil {
				t.Errorf("%s: id, environments or config missing: %s", a.Name, out)
			}
			rows = append(rows, strings.Join([]string{a.Project, a.Name, a.Access, deref(a.AccessAs),
				strings.Join(a.Environments, ","), strconv.FormatBool(a.ResourceManagement)}, " "))
		}
		want := []string{
			"infra/agents prod ci_access agent production,review/* true",
			"infra/agents prod user_access user  false",
			"infra/agents staging ci_access agent  false",
			"infra/team/app own ci_access agent  false",
		}
		if !reflect.DeepEqual(rows, want) {
			t.Errorf("--project %s:\n got %q\nwant %q", project, rows, want)
		}
		if len(got.Agents) == 4 && got.Agents[2].Config["default_namespace"] != "app" {
			t.Errorf("config: %v", got.Agents[2].Config)
		}
	}
	// Empty lists are [] in JSON.
	if !strings.Contains(mustRun(t, w, "infra/team/app", "-o", "json"), `"environments": []`) {
		t.Error("environments not [] when empty")
	}
}

func mustRun(t *testing.T, w *inProcess, project string, args ...string) string {
	t.Helper()
	code, out, errOut := w.runProject(t, project, append([]string{"agent", "list", "--shared"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	return out
}

func TestAgentListSharedTable(t *testing.T) {
	w, _ := sharedWorld(t)
	out := mustRun(t, w, "infra/team/app")
	for _, want := range []string{"AGENT PROJECT", "ACCESS AS", "RESOURCE MANAGEMENT", "production,review/*", "<all>"} {
		if !strings.Contains(strings.ToUpper(out), strings.ToUpper(want)) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "other") {
		t.Errorf("an agent that does not name the project is listed:\n%s", out)
	}
	if got := mustRun(t, w, "infra/team/app", "-o", "name"); !strings.Contains(got, "agent/infra/agents:prod\n") {
		t.Errorf("-o name:\n%s", got)
	}
}

func TestAgentListSharedNone(t *testing.T) {
	w := newInProcess(t)
	code, out, errOut := w.runProject(t, "infra/agents", "agent", "list", "--shared")
	if code != 0 || out != "" || !strings.Contains(errOut, "no agent is shared with infra/agents") {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
	if out := mustRun(t, w, "infra/agents", "-o", "json"); strings.Join(strings.Fields(out), "") != `{"agents":[]}` {
		t.Errorf("-o json: %s", out)
	}
}
