package cmd

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// fleetWorld is the fake GitLab with agents under infra: prod (v17.3.0, ok
// against KAS 17.3.1), old (no connection: version unknown), edge
// (v17.1.2, warn) and next (v17.5.0, fail) in infra/sub/edge.
func fleetWorld(t *testing.T) *inProcess {
	t.Helper()
	w := newInProcess(t)
	sub := w.gl.AddProject("infra/sub/edge")
	w.gl.SetRole(sub, w.user, fakegitlab.Developer)
	w.gl.SetAgentConnection(w.gl.AddAgent(w.project, "prod", w.user), "v17.3.0")
	w.gl.AddAgent(w.project, "old", w.user)
	w.gl.SetAgentConnection(w.gl.AddAgent(sub, "edge", w.user), "v17.1.2")
	w.gl.SetAgentConnection(w.gl.AddAgent(sub, "next", w.user), "v17.5.0")
	return w
}

func (w *inProcess) fleet(t *testing.T, flags []string, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"fleet", "pipeline", "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile}, flags...)
	return w.runBare(t, append(append(all, "--"), args...)...)
}

// contexts reads the pipeline back: job name → the AGENT_CONTEXT of each
// matrix entry, and the one script line of every job.
func contexts(t *testing.T, out string) (map[string][]string, []string) {
	t.Helper()
	var p map[string]struct {
		Parallel struct {
			Matrix []map[string]string `yaml:"matrix"`
		} `yaml:"parallel"`
		Script []string `yaml:"script"`
	}
	if err := yaml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	jobs := map[string][]string{}
	var scripts []string
	for name, j := range p {
		jobs[name] = []string{}
		for _, m := range j.Parallel.Matrix {
			jobs[name] = append(jobs[name], m["AGENT_CONTEXT"])
		}
		scripts = append(scripts, j.Script...)
	}
	return jobs, scripts
}

func TestFleetPipelineSelection(t *testing.T) {
	w := fleetWorld(t)
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
		warn  string
	}{
		{"all", nil, []string{"infra/agents:old", "infra/agents:prod", "infra/sub/edge:edge", "infra/sub/edge:next"}, "4 agents, 1 jobs (fleet-1) of upgrade"},
		{"outdated", []string{"--outdated"}, []string{"infra/sub/edge:edge", "infra/sub/edge:next"}, "1 agents left out: their agentk version is unknown"},
		{"disconnected", []string{"--disconnected"}, []string{"infra/agents:old"}, "1 agents, 1 jobs"},
		{"named", []string{"--agent", "infra/sub/edge:next", "--agent", "infra/agents:prod", "--agent", "infra/agents:prod"}, []string{"infra/sub/edge:next", "infra/agents:prod"}, "2 agents"},
		{"no subgroups", []string{"--no-subgroups", "--outdated"}, nil, "no agent under group infra is outside GitLab's skew range from KAS 17.3.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := w.fleet(t, append([]string{"--group", "infra"}, tc.flags...), "upgrade", "{agent}")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(errOut, tc.warn) {
				t.Errorf("stderr %q, want %q", errOut, tc.warn)
			}
			jobs, scripts := contexts(t, out)
			if tc.want == nil {
				if len(jobs) != 1 || jobs["fleet-none"] == nil || len(scripts) != 1 || !strings.HasPrefix(scripts[0], "echo ") {
					t.Fatalf("want one no-op job, got\n%s", out)
				}
				return
			}
			got := jobs["fleet-1"]
			if len(jobs) != 1 || strings.Join(sorted(got), ",") != strings.Join(sorted(tc.want), ",") {
				t.Fatalf("got %v, want %v\n%s", jobs, tc.want, out)
			}
			if tc.name == "named" && strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("named agents in %v, want the order given %v", got, tc.want)
			}
			if len(scripts) != 1 || scripts[0] != `kubectl gitlab-agent 'upgrade' "$AGENT_NAME" --context "$AGENT_CONTEXT" -o json > result.json` {
				t.Errorf("script %q", scripts)
			}
			if strings.Contains(out, "TOKEN") || strings.Contains(out, "glpat") {
				t.Errorf("a token in the pipeline:\n%s", out)
			}
		})
	}
}

func TestFleetPipelineRefuses(t *testing.T) {
	w := fleetWorld(t)
	for _, tc := range []struct {
		flags, args []string
		want        string
	}{
		{[]string{"--group", "infra", "--agent", "infra/agents:nope"}, []string{"status"}, "--agent infra/agents:nope: no such agent under group infra"},
		{[]string{"--group", "infra", "--agent", `a/b:x"; rm -rf /`}, []string{"status"}, `invalid agent name`},
		{[]string{"--group", "infra", "--agent", "a b/c:x"}, []string{"status"}, "is not a GitLab project path"},
		{[]string{"--group", "infra"}, []string{"fleet", "pipeline"}, "fleet pipeline cannot run in a fleet job"},
		{[]string{"--group", "infra"}, []string{"upgrade", "{agent}", "-o", "yaml"}, "ARGS hold -o"},
		{[]string{"--group", "infra"}, []string{"upgrade", "{agent}", "--", "x"}, "ARGS hold --"},
		{[]string{"--group", "infra"}, []string{"token", "list", "x"}, "token list cannot run in a fleet job"},
	} {
		code, out, errOut := w.fleet(t, tc.flags, tc.args...)
		if code == 0 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v -- %v: exit %d, stdout %q, stderr %q; want %q", tc.flags, tc.args, code, out, errOut, tc.want)
		}
	}
}

// TestFleetPipelineHostileArgs: ARGS reach the script line only, each
// quoted; the pipeline keeps its one job and its keys.
func TestFleetPipelineHostileArgs(t *testing.T) {
	w := fleetWorld(t)
	evil := []string{"x'; id; echo '", "$(id)", "a\nb: c\n- d", "`id`", "{ } [ ] & * ! | > % @ #"}
	code, out, errOut := w.fleet(t, []string{"--group", "infra", "--agent", "infra/agents:prod"}, append([]string{"doctor", "{agent}", "--timeout"}, evil...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var p map[string]map[string]any
	if err := yaml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	j, ok := p["fleet-1"]
	if len(p) != 1 || !ok || len(j) != 5 {
		t.Fatalf("got\n%s", out)
	}
	script := j["script"].([]any)
	want := `kubectl gitlab-agent 'doctor' "$AGENT_NAME" '--timeout' 'x'\''; id; echo '\''' '$(id)' 'a
b: c
- d' '` + "`id`" + `' '{ } [ ] & * ! | > % @ #' --context "$AGENT_CONTEXT" -o json > result.json`
	if len(script) != 1 || script[0] != want {
		t.Fatalf("script %q", script)
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
