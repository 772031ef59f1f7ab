package cmd

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// gitlabWrites are the requests that would change GitLab.
func gitlabWrites(w *inProcess) []string {
	var out []string
	for _, r := range w.gl.Requests() {
		if r.Method != "GET" && r.Method != "HEAD" {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// installed is an in-process world with agent prod installed.
func installed(t *testing.T) *inProcess {
	t.Helper()
	w := newInProcess(t)
	if code, _, errOut := w.run(t, "install", "prod", "--no-config"); code != 0 {
		t.Fatalf("install: %s", errOut)
	}
	return w
}

// TestDryRunServerAsksTheCluster: --dry-run takes kubectl's values. client
// (also a bare --dry-run) plans, predicting what it can; server has the
// cluster dry-run every object, so a refusal by admission shows, where
// client sees nothing to do. Neither changes GitLab or the cluster.
func TestDryRunServerAsksTheCluster(t *testing.T) {
	for _, cmd := range [][]string{{"install", "prod", "--no-config"}, {"upgrade", "prod"}, {"token", "rotate", "prod"}} {
		t.Run(cmd[0], func(t *testing.T) {
			w := installed(t)
			run := w.run
			if cmd[0] == "upgrade" {
				run = w.runBare // upgrade takes no GitLab flags
			}
			writes, applied := len(gitlabWrites(w)), len(w.cluster.Applied())
			objects := len(w.cluster.Objects())

			code, bare, errOut := run(t, append(cmd, "--dry-run")...)
			if code != 0 || !strings.Contains(bare, "\nCluster: ") && !strings.HasPrefix(bare, "Cluster: ") {
				t.Fatalf("--dry-run: exit %d\n%s%s", code, bare, errOut)
			}
			before := w.cluster.Count(fake.DryRun)
			if _, client, _ := run(t, append(cmd, "--dry-run=client")...); client != bare {
				t.Errorf("a bare --dry-run is not client:\n%s\nvs\n%s", bare, client)
			}
			byClient := w.cluster.Count(fake.DryRun) - before

			before = w.cluster.Count(fake.DryRun)
			code, out, errOut := run(t, append(cmd, "--dry-run=server")...)
			if code != 0 || !strings.Contains(out, "Cluster (server dry run): ") {
				t.Fatalf("--dry-run=server: exit %d\n%s%s", code, out, errOut)
			}
			byServer := w.cluster.Count(fake.DryRun) - before
			if byServer < objects || byClient >= byServer {
				t.Errorf("the server dry-ran %d objects with --dry-run=server, %d with client; want each of the %d with server, fewer with client", byServer, byClient, objects)
			}

			// The cluster's admission refuses the next object it is sent:
			// the server dry run says so, with the object; client does not
			// ask (nothing changed, so nothing needs the server).
			denied := errors.New(`admission webhook "policy.example.com" denied the request`)
			w.cluster.Fail(fake.DryRun, w.cluster.Count(fake.DryRun)+1, denied)
			code, out, errOut = run(t, append(cmd, "--dry-run=server")...)
			if code == 0 || !strings.Contains(errOut, "denied the request") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("--dry-run=server with a webhook that denies: exit %d\n%s%s", code, out, errOut)
			}

			if got := gitlabWrites(w); len(got) != writes {
				t.Errorf("a dry run changed GitLab: %v", got[writes:])
			}
			if n := len(w.cluster.Applied()); n != applied {
				t.Errorf("a dry run applied %d objects", n-applied)
			}
		})
	}
}

// TestRotateDryRunPlans: token rotate --dry-run says what it would do and
// creates no token.
func TestRotateDryRunPlans(t *testing.T) {
	w := installed(t)
	agent := w.gl.Agents(w.project)[0]
	tokens := w.gl.AgentTokens(&agent)
	code, out, errOut := w.run(t, "token", "rotate", "prod", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`GitLab: would create a token for agent "prod"`, "GitLab: would revoke the old token", "Cluster: Plan: "} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if got := w.gl.AgentTokens(&agent); len(got) != len(tokens) {
		t.Errorf("a dry run made %d tokens", len(got)-len(tokens))
	}
	code, out, _ = w.run(t, "token", "rotate", "prod", "--dry-run", "-o", "json")
	if code != 0 || !strings.Contains(out, `"plan": {`) {
		t.Errorf("-o json: exit %d\n%s", code, out)
	}
}

// TestUninstallDryRun: uninstall --dry-run lists what would go and asks
// nothing; server has the cluster dry-run each deletion.
func TestUninstallDryRun(t *testing.T) {
	w := installed(t)
	objects, writes := len(w.cluster.Objects()), len(gitlabWrites(w))
	// stdin is no terminal: a real uninstall would need --yes.
	code, out, errOut := w.run(t, "uninstall", "prod", "--dry-run", "--revoke-tokens", "--delete-agent")
	if code != 0 || !strings.Contains(out, "Cluster: would delete v1/Namespace/gitlab-agent-prod\n") ||
		!strings.Contains(out, "GitLab: would revoke token ") || !strings.Contains(out, `GitLab: would delete agent "prod"`) {
		t.Fatalf("--dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if n := w.cluster.Count(fake.DeleteAndWait) + w.cluster.Count(fake.DeleteDryRun); n != 0 {
		t.Errorf("--dry-run=client asked the cluster to delete (%d calls)", n)
	}

	code, out, errOut = w.run(t, "uninstall", "prod", "--dry-run=server", "-o", "json")
	if code != 0 || !strings.Contains(out, `"dryRun": "server"`) {
		t.Fatalf("--dry-run=server: exit %d\n%s%s", code, out, errOut)
	}
	if n := w.cluster.Count(fake.DeleteDryRun); n != objects {
		t.Errorf("--dry-run=server dry-ran %d deletions; want %d", n, objects)
	}
	w.cluster.Fail(fake.DeleteDryRun, objects+1, errors.New(`clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "dev" cannot delete`))
	code, _, errOut = w.run(t, "uninstall", "prod", "--dry-run=server")
	if code == 0 || !strings.Contains(errOut, "(server dry run): ") || !strings.Contains(errOut, "forbidden") {
		t.Errorf("a deletion the server refuses: exit %d, %s", code, errOut)
	}

	if n := len(w.cluster.Objects()); n != objects {
		t.Errorf("a dry run deleted %d objects", objects-n)
	}
	if got := gitlabWrites(w); len(got) != writes {
		t.Errorf("a dry run changed GitLab: %v", got[writes:])
	}
}

// TestGitLabDryRuns: the commands that change only GitLab take
// --dry-run=client, print what they would do and do nothing; server is
// refused in one line before any request (GitLab has no dry run).
func TestGitLabDryRuns(t *testing.T) {
	w := newInProcess(t)
	a := w.gl.AddAgent(w.project, "prod", w.user)
	tokenFile := filepath.Join(t.TempDir(), "agent-token")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "register", "staging"}, `agent "staging" registered in infra/agents (dry run)`},
		{[]string{"agent", "delete", "prod"}, `deleted agent "prod" (id ` + strconv.FormatInt(a.ID, 10) + `) from infra/agents (dry run)`},
		{[]string{"token", "create", "prod", "--name", "ci", "--token-file", tokenFile}, `token "ci" created for agent "prod" (dry run)`},
		{[]string{"agent", "config", "set", "prod", "--ci-access-project", "apps/web"}, "ci_access:"},
	} {
		code, out, errOut := w.run(t, append(c.args, "--dry-run")...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v --dry-run: exit %d, stdout %q, stderr %q; want %q", c.args, code, out, errOut, c.want)
		}
		n := len(w.gl.Requests())
		code, out, errOut = w.run(t, append(c.args, "--dry-run=server")...)
		if code == 0 || out != "" || errOut != "error: --dry-run=server: GitLab has no server-side dry run; use --dry-run=client to see what would be done\n" {
			t.Errorf("%v --dry-run=server: exit %d, stdout %q, stderr %q", c.args, code, out, errOut)
		}
		if len(w.gl.Requests()) != n {
			t.Errorf("%v --dry-run=server: requests made before the refusal", c.args)
		}
	}
	if got := gitlabWrites(w); len(got) != 0 {
		t.Errorf("dry runs changed GitLab: %v", got)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("token create --dry-run wrote %s", tokenFile)
	}

	// At GitLab's two-token limit the dry run fails as the real one would.
	w.gl.AddAgentToken(a, "one", w.user)
	w.gl.AddAgentToken(a, "two", w.user)
	code, _, errOut := w.run(t, "token", "create", "prod", "--name", "ci", "--show-token", "--dry-run")
	if code == 0 || !strings.Contains(errOut, "already has 2 active tokens") {
		t.Errorf("token create --dry-run at the limit: exit %d, %s", code, errOut)
	}

	// --dry-run=true, from when the flag was a boolean: client, with a
	// warning.
	code, out, errOut := w.run(t, "agent", "register", "staging", "--dry-run=true")
	if code != 0 || !strings.Contains(out, "(dry run)") || !strings.Contains(errOut, "--dry-run=true is deprecated") {
		t.Errorf("--dry-run=true: exit %d, %q, %q", code, out, errOut)
	}
}
