package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// inClone makes the working directory a git clone whose remotes are
// name=url pairs, away from the user's glab config and GitLab variables.
func inClone(t *testing.T, remotes ...string) {
	t.Helper()
	dir := t.TempDir()
	cfg := "[core]\n\tbare = false\n"
	for i := 0; i+1 < len(remotes); i += 2 {
		cfg += "[remote \"" + remotes[i] + "\"]\n\turl = " + remotes[i+1] + "\n"
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"GITLAB_URL", "GITLAB_TOKEN", "CI_JOB_TOKEN", "CI_PROJECT_ID", "CI_SERVER_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("GLAB_CONFIG_DIR", t.TempDir())
	t.Chdir(dir)
}

// gitlabFlags are GitLabFlags bound to a command whose stderr is errOut.
func gitlabFlags(errOut *bytes.Buffer) *GitLabFlags {
	cmd := &cobra.Command{Use: "x"}
	cmd.SetErr(errOut)
	g := &GitLabFlags{}
	g.AddFlags(cmd, true)
	return g
}

// TestGitLabURLFromTheGitRemote: with no --gitlab-url, GITLAB_URL or
// CI_SERVER_URL, the GitLab is the git remote's, as glab takes it (an
// http(s) remote's scheme, host and port; https://host for ssh), said once
// in one line that says which.
func TestGitLabURLFromTheGitRemote(t *testing.T) {
	for _, c := range []struct {
		remote, want, how string
	}{
		{"git@git.example.com:infra/agents.git", "https://git.example.com", "an ssh URL: https on the default port, as glab assumes"},
		{"ssh://git@git.example.com:2222/infra/agents.git", "https://git.example.com", "an ssh URL: https on the default port, as glab assumes"},
		{"https://git.example.com:8443/infra/agents.git", "https://git.example.com:8443", "an https URL: its host and port"},
		{"https://oauth2:secret@git.example.com/infra/agents.git", "https://git.example.com", "an https URL"},
	} {
		t.Run(c.remote, func(t *testing.T) {
			inClone(t, "upstream", "git@github.com:someone/agents.git", "origin", c.remote)
			var errOut bytes.Buffer
			g := gitlabFlags(&errOut)
			if got := g.ResolvedURL(); got != c.want {
				t.Fatalf("ResolvedURL() = %q, want %q", got, c.want)
			}
			g.ResolvedURL()
			want := "using GitLab " + c.want + ` (from the git remote "origin", ` + c.how + "; --gitlab-url to choose)\n"
			if errOut.String() != want || strings.Contains(errOut.String(), "secret") {
				t.Errorf("stderr %q, want %q", errOut.String(), want)
			}
			var projErr bytes.Buffer
			ref, err := gitlabFlags(&projErr).ProjectRef(&projErr)
			if err != nil || ref.String() != "infra/agents" {
				t.Fatalf("ProjectRef: %v %v", ref, err)
			}
			want = "using project infra/agents on GitLab " + c.want + ` (from the git remote "origin", ` + c.how + "; --project and --gitlab-url to choose)\n"
			if projErr.String() != want {
				t.Errorf("ProjectRef said %q, want one line %q", projErr.String(), want)
			}
		})
	}
	t.Run("ssh remote and glab's api_host for that host", func(t *testing.T) {
		inClone(t, "origin", "git@git.example.com:infra/agents.git")
		cfg := "hosts:\n  git.example.com:\n    token: glpat-from-glab\n    api_host: git.example.com:3443\n    api_protocol: https\n"
		if err := os.WriteFile(filepath.Join(os.Getenv("GLAB_CONFIG_DIR"), "config.yml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		g := gitlabFlags(&errOut)
		if got := g.ResolvedURL(); got != "https://git.example.com:3443" {
			t.Fatalf("ResolvedURL() = %q", got)
		}
		if c, err := g.Credentials(); err != nil || c.Token != "glpat-from-glab" {
			t.Errorf("glab's token: %+v %v", c, err)
		}
		if !strings.Contains(errOut.String(), "glab's api_host for git.example.com") {
			t.Errorf("stderr %q", errOut.String())
		}
	})
	t.Run("another forge's remote says nothing", func(t *testing.T) {
		inClone(t, "origin", "git@github.com:someone/agents.git")
		var errOut bytes.Buffer
		if got := gitlabFlags(&errOut).ResolvedURL(); got != defaultGitLabURL || errOut.Len() != 0 {
			t.Errorf("ResolvedURL() = %q, stderr %q", got, errOut.String())
		}
	})
	t.Run("GitLab.com's remote: no note", func(t *testing.T) {
		inClone(t, "origin", "git@gitlab.com:infra/agents.git")
		var errOut bytes.Buffer
		if got := gitlabFlags(&errOut).ResolvedURL(); got != defaultGitLabURL || errOut.Len() != 0 {
			t.Errorf("ResolvedURL() = %q, stderr %q", got, errOut.String())
		}
	})
	t.Run("the given URL wins; the remote elsewhere is named in the error", func(t *testing.T) {
		inClone(t, "origin", "ssh://git@git.example.com:2222/infra/agents.git")
		t.Setenv("GITLAB_URL", "https://gitlab.com")
		var errOut bytes.Buffer
		g := gitlabFlags(&errOut)
		if got := g.ResolvedURL(); got != "https://gitlab.com" {
			t.Fatalf("ResolvedURL() = %q", got)
		}
		_, err := g.ProjectRef(&errOut)
		if err == nil || strings.Contains(err.Error(), "\n") || errOut.Len() != 0 {
			t.Fatalf("%v, stderr %q", err, errOut.String())
		}
		for _, w := range []string{`git remote "origin" is on git.example.com`, "gitlab.com (GITLAB_URL)", "--project GROUP/PROJECT", "--gitlab-url https://git.example.com "} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not say %q", err, w)
			}
		}
	})
}

// TestTheGitRemoteGetsNoTokenItWasNotMadeFor: a cloned repository (or
// another user's .git above the working directory) chooses its remote, so a
// GitLab taken from it gets only the token glab stored for that host, never
// --gitlab-token-file's or GITLAB_TOKEN (bound to no host); and a plain http
// remote is no GitLab to take (the token would cross in cleartext). Found
// by a review: TAB completion sent GITLAB_TOKEN to the remote's host.
func TestTheGitRemoteGetsNoTokenItWasNotMadeFor(t *testing.T) {
	w := newInProcess(t)
	w.gl.AddAgent(w.project, "prod", w.user)
	before := len(w.gl.Requests())

	// An http remote (the fake): not taken; the error names both hosts.
	inClone(t, "origin", w.gl.URL+"/infra/agents.git")
	code, _, errOut := w.runBare(t, "agent", "list", "--gitlab-token-file", w.tokenFile)
	if code == 0 || !strings.Contains(errOut, "--gitlab-url "+w.gl.URL) || len(w.gl.Requests()) != before {
		t.Errorf("an http remote: exit %d, %d requests, stderr %q", code, len(w.gl.Requests())-before, errOut)
	}
	code, out, _ := w.runBare(t, "__complete", "agent", "get", "")
	if code != 0 || strings.Contains(out, "prod") || len(w.gl.Requests()) != before {
		t.Errorf("completion asked the remote's GitLab: %q, %d requests", out, len(w.gl.Requests())-before)
	}

	// An https remote: its GitLab, but GITLAB_TOKEN and the token file do
	// not go there.
	inClone(t, "origin", "https://gitlab.attacker.example/infra/agents.git")
	t.Setenv("GITLAB_TOKEN", "glpat-not-for-the-remote")
	var notes bytes.Buffer
	g := gitlabFlags(&notes)
	g.TokenFile = w.tokenFile
	if got := g.ResolvedURL(); got != "https://gitlab.attacker.example" {
		t.Fatalf("ResolvedURL() = %q", got)
	}
	c, err := g.Credentials()
	if err == nil || c.Token != "" || !strings.Contains(err.Error(), "pass --gitlab-url https://gitlab.attacker.example") {
		t.Errorf("credentials for the remote's GitLab: %+v, %v", c, err)
	}
	// Named by the user, the same GitLab gets them.
	t.Setenv("GITLAB_URL", "https://gitlab.attacker.example")
	if c, err := gitlabFlags(&notes).Credentials(); err != nil || c.Token != "glpat-not-for-the-remote" {
		t.Errorf("credentials for the GitLab named: %+v, %v", c, err)
	}
}
