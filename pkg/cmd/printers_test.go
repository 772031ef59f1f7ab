package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// TestListPrinters: every list (agent list, token list, token-cache list,
// status) takes kubectl's -o name, -o wide, -o jsonpath=, -o
// custom-columns= and --no-headers; jsonpath and custom-columns work on the
// list's JSON document (docs/output.md), custom-columns over its items.
func TestListPrinters(t *testing.T) {
	w := newInProcess(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	cache, err := tunnel.DefaultCache()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := cache.Store(tunnel.Key("https://gitlab.example.com", "a credential"), &tunnel.CachedPAT{
		GitLabURL: "https://gitlab.example.com", ID: 42, Name: "k8s-proxy", Token: "glpat-secret", ExpiresAt: at, CreatedAt: at,
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := w.run(t, "install", "prod", "--no-config"); code != 0 {
		t.Fatalf("install: %s", errOut)
	}
	staging := w.gl.AddAgent(w.project, "staging", w.user)
	tokenID := w.gl.AddAgentToken(staging, "laptop", w.user).ID
	prod := w.gl.Agents(w.project)[0]

	for _, c := range []struct {
		args []string
		bare bool
		want string
	}{
		{[]string{"agent", "list", "-o", "name"}, false, "agent/prod\nagent/staging\n"},
		{[]string{"agent", "list", "-o", "jsonpath={.agents[*].name}"}, false, "prod staging"},
		{[]string{"agent", "list", "-o", "custom-columns=NAME:.name,ID:.id", "--no-headers"}, false,
			fmt.Sprintf("prod      %d\nstaging   %d\n", prod.ID, staging.ID)},
		{[]string{"token", "list", "staging", "-o", "name"}, false, fmt.Sprintf("token/%d\n", tokenID)},
		{[]string{"token", "list", "staging", "-o", "custom-columns=ID:.id,NAME:.name"}, false,
			fmt.Sprintf("ID    NAME\n%d   laptop\n", tokenID)},
		{[]string{"token", "list", "staging", "-o", "jsonpath={.tokens[0].lastUsedAt}"}, false, "null"}, // never used
		{[]string{"token-cache", "list", "-o", "name"}, true, "personalaccesstoken/42\n"},
		{[]string{"token-cache", "list", "-o", "jsonpath={.tokens[*].expiresAt}"}, true, "2030-01-02T03:04:05Z"},
		{[]string{"token-cache", "list", "-o", "custom-columns=URL:.gitlabURL,ID:.id", "--no-headers"}, true, "https://gitlab.example.com   42\n"},
		{[]string{"status", "prod", "--no-doctor", "-o", "name"}, false, "agent/prod\n"},
		{[]string{"status", "prod", "--no-doctor", "-o", "custom-columns=AGENT:.agent.name,VERDICT:.verdict,READY:.cluster.ready"}, false,
			"AGENT   VERDICT     READY\nprod    connected   2\n"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			run := w.run
			if c.bare {
				run = w.runBare
			}
			code, out, errOut := run(t, c.args...)
			if code != 0 || out != c.want {
				t.Errorf("exit %d, stderr %q:\n%q\nwant\n%q", code, errOut, out, c.want)
			}
		})
	}

	// -o wide: the table with columns of its own; --no-headers drops the
	// header row of the table and of -o wide.
	for _, c := range []struct {
		args   []string
		bare   bool
		header string
	}{
		{[]string{"agent", "list"}, false, "CREATED BY"},
		{[]string{"token", "list", "staging"}, false, "LAST USED AT"},
		{[]string{"token-cache", "list"}, true, "KEY"},
		{[]string{"status", "prod", "--no-doctor"}, false, "VERDICT"},
	} {
		run := w.run
		if c.bare {
			run = w.runBare
		}
		_, wide, errOut := run(t, append(c.args, "-o", "wide")...)
		if !strings.Contains(wide, c.header) {
			t.Errorf("%v -o wide lacks %s:\n%s%s", c.args, c.header, wide, errOut)
		}
		_, bare, _ := run(t, append(c.args, "-o", "wide", "--no-headers")...)
		if strings.Contains(bare, c.header) || strings.Count(bare, "\n") != strings.Count(wide, "\n")-1 {
			t.Errorf("%v -o wide --no-headers:\n%s", c.args, bare)
		}
		if c.args[0] == "status" {
			continue // its text form is a screen per agent, not a table
		}
		_, table, _ := run(t, c.args...)
		_, noHeaders, _ := run(t, append(c.args, "--no-headers")...)
		first, rest, _ := strings.Cut(table, "\n")
		if strings.ToUpper(first) != first || noHeaders == table || strings.TrimLeft(rest, " ") != strings.TrimLeft(noHeaders, " ") && squeeze(rest) != squeeze(noHeaders) {
			t.Errorf("%v --no-headers:\n%s\nthe table:\n%s", c.args, noHeaders, table)
		}
	}
}

// squeeze is s with each run of spaces made one (--no-headers narrows
// the columns to their cells).
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// TestListFormatsOnlyOnLists: -o name, wide and the templates are kubectl's
// list printers; elsewhere they are unknown formats, and --no-headers an
// unknown flag, refused before any request.
func TestListFormatsOnlyOnLists(t *testing.T) {
	w := newInProcess(t)
	for _, args := range [][]string{
		{"agent", "get", "prod", "-o", "wide"},
		{"agent", "get", "prod", "-o", "jsonpath={.id}"},
		{"token", "revoke", "prod", "1", "-o", "name"},
	} {
		code, out, errOut := w.run(t, args...)
		if code == 0 || out != "" || !strings.Contains(errOut, "unknown output format") {
			t.Errorf("%v: exit %d, %q, %q", args, code, out, errOut)
		}
	}
	code, _, errOut := w.run(t, "agent", "get", "prod", "--no-headers")
	if code == 0 || !strings.Contains(errOut, "unknown flag: --no-headers") {
		t.Errorf("agent get --no-headers: exit %d, %s", code, errOut)
	}
	if n := len(w.gl.Requests()); n != 0 {
		t.Errorf("%d requests before the refusals", n)
	}
}

// complete runs cobra's __complete as a shell's completion script does, and
// returns the candidates it printed.
func (w *inProcess) complete(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errOut := w.runBare(t, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d, %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[:len(lines)-1] // the last is the directive, ":4"
}

// TestCompletion: flag values and agent names complete, through the
// __complete command the completion scripts call.
func TestCompletion(t *testing.T) {
	w := newInProcess(t)
	w.gl.AddAgent(w.project, "prod", w.user)
	w.gl.AddAgent(w.project, "staging", w.user)
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u1, user: {token: x}}]
contexts:
- {name: dev, context: {cluster: c1, user: u1}}
- {name: prod-eu, context: {cluster: c1, user: u1}}
current-context: dev
`), 0o600); err != nil {
		t.Fatal(err)
	}
	gitlabFlags := []string{"--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents"}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"install", "prod", "--chart-version", ""}, []string{"2.6.2", "2.15.0"}},
		{[]string{"agent", "list", "-o", ""}, []string{"table", "json", "yaml", "wide", "name", "jsonpath=", "custom-columns="}},
		{[]string{"version", "-o", ""}, []string{"text", "json", "yaml"}},
		{[]string{"install", "prod", "--dry-run", ""}, nil}, // a bare --dry-run takes no value
		{[]string{"install", "prod", "--dry-run="}, []string{"none", "client", "server"}},
		{[]string{"agent", "delete", "prod", "--dry-run="}, []string{"none", "client"}},
		{[]string{"status", "--kubeconfig", kubeconfig, "--context", ""}, []string{"dev", "prod-eu"}},
		{[]string{"diff", "--kubeconfig", kubeconfig, "--context", "pr"}, []string{"prod-eu"}},
		{append(append([]string{"token", "list"}, gitlabFlags...), ""), []string{"prod", "staging"}},
		{append(append([]string{"agent", "get"}, gitlabFlags...), "st"), []string{"staging"}},
		{append(append([]string{"uninstall"}, gitlabFlags...), ""), []string{"prod", "staging"}},
		{append(append([]string{"status"}, gitlabFlags...), ""), []string{"prod", "staging"}},
		// One agent per command: nothing after it.
		{append(append([]string{"token", "list", "prod"}, gitlabFlags...), ""), nil},
		// Without a credential GitLab is not asked.
		{[]string{"agent", "get", "--gitlab-url", w.gl.URL, "--project", "infra/agents", ""}, nil},
	} {
		got := w.complete(t, c.args...)
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("__complete %v = %q, want %q", c.args, got, c.want)
		}
	}
}

// TestCompletionGivesUpOnASlowGitLab: a GitLab that does not answer costs
// the shell completionTimeout, then no names.
func TestCompletionGivesUpOnASlowGitLab(t *testing.T) {
	w := newInProcess(t)
	w.gl.AddAgent(w.project, "prod", w.user)
	args := []string{"agent", "get", "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents", ""}
	if got := w.complete(t, args...); len(got) != 1 {
		t.Fatalf("completions %q from a GitLab that answers; want prod", got)
	}
	old := completionTimeout
	completionTimeout = 50 * time.Millisecond
	t.Cleanup(func() { completionTimeout = old })
	w.gl.Inject(fakegitlab.Fault{Route: "GET /api/v4/projects/{id}/cluster_agents", Latency: time.Hour})
	if got := w.complete(t, args...); len(got) != 0 {
		t.Errorf("completions %q from a GitLab that did not answer", got)
	}
}
