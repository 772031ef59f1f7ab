package cmd

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStatusWithoutTheAgentsAPI: with only a CI job's token (which the
// agents API refuses), or no credential at all, status shows the cluster
// part and says in one note what the GitLab part needs, without asking
// GitLab's agents API; a token file that cannot be read stays an error.
func TestStatusWithoutTheAgentsAPI(t *testing.T) {
	w := newInProcess(t)
	if code, _, errOut := w.run(t, "install", "prod"); code != 0 {
		t.Fatalf("install: %s", errOut)
	}
	jobToken := w.gl.AddJobToken(w.user, w.project)
	for name, tt := range map[string]struct{ env, why string }{
		"job token":     {jobToken, "GitLab's agents API does not accept CI_JOB_TOKEN"},
		"no credential": {"", "no GitLab credentials for 127.0.0.1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CI_JOB_TOKEN", tt.env)
			t.Setenv("HOME", t.TempDir()) // no glab config
			t.Setenv("XDG_CONFIG_HOME", "")
			before := len(w.gl.Requests())
			code, out, errOut := w.runBare(t, "status", "prod", "--gitlab-url", w.gl.URL, "--no-doctor")
			if code != 0 || !strings.Contains(errOut, "note: the cluster part only: "+tt.why) || !strings.Contains(errOut, "api scope") ||
				strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, want := range []string{"Agent      prod (GitLab not asked)", "Cluster    Deployment gitlab-agent-prod/prod-gitlab-agent-v2: ", "Verdict    installed"} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in\n%s", want, out)
				}
			}
			if strings.Contains(out, "Tokens") {
				t.Errorf("tokens shown that were not asked for:\n%s", out)
			}
			// Without NAME: every agent installed in the cluster.
			code, out, _ = w.runBare(t, "status", "--gitlab-url", w.gl.URL, "--no-doctor", "-o", "json")
			var doc struct {
				Agents []struct {
					Agent          struct{ Name string }
					Verdict        string
					GitLabNotAsked string
				}
			}
			if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Agents) != 1 || doc.Agents[0].Agent.Name != "prod" ||
				doc.Agents[0].Verdict != "installed" || doc.Agents[0].GitLabNotAsked == "" {
				t.Errorf("status -o json: exit %d\n%s", code, out)
			}
			// A named agent that is not installed.
			if code, out, _ = w.runBare(t, "status", "staging", "--gitlab-url", w.gl.URL, "--no-doctor"); code != 0 || !strings.Contains(out, "Verdict    not installed") {
				t.Errorf("not installed: exit %d\n%s", code, out)
			}
			if n := len(w.gl.Requests()); n != before {
				t.Errorf("GitLab was asked %d times without doctor", n-before)
			}
			// With doctor's checks: they run on what there is, and the
			// agents API is still not asked.
			asked := len(w.gl.Requests())
			code, out, errOut = w.runBare(t, "status", "prod", "--gitlab-url", w.gl.URL)
			if code != 0 || !strings.Contains(out, "Verdict    installed") {
				t.Errorf("with doctor: exit %d\n%s%s", code, out, errOut)
			}
			for _, q := range w.gl.Requests()[asked:] {
				if strings.Contains(q.Path, "cluster_agents") || strings.Contains(q.Path, "repository") {
					t.Errorf("doctor under status asked %s", q.Path)
				}
			}
			if strings.Contains(out+errOut, jobToken) {
				t.Error("the job token was printed")
			}
		})
	}
	code, _, errOut := w.runBare(t, "status", "prod", "--gitlab-url", w.gl.URL, "--project", "infra/agents", "--gitlab-token-file", "/nonexistent/token")
	if code == 0 || !strings.Contains(errOut, "--gitlab-token-file") {
		t.Errorf("an unreadable token file: exit %d, %s", code, errOut)
	}
}
