package cmd

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"
)

// TestGoldenOutput runs commands in-process against the fake GitLab and the
// in-memory cluster and compares what they print, stdout then stderr, with
// testdata/golden/*.txt (go test -run TestGoldenOutput -update rewrites
// them: review the change). What differs between runs is replaced first:
// the fake's address and the time in a token's name.
func TestGoldenOutput(t *testing.T) {
	w := newInProcess(t)
	// Made 30 hours ago, last used 10 hours ago: ages printed as "30h" and
	// "10h ago" for a whole hour (apimachinery's HumanDuration), so they do
	// not move while the test runs.
	w.gl.SetNow(func() time.Time { return time.Now().Add(-30 * time.Hour) })
	if code, _, errOut := w.run(t, "install", "prod", "--no-config"); code != 0 {
		t.Fatalf("install: %s", errOut)
	}
	a := w.gl.AddAgent(w.project, "staging", w.user)
	w.gl.AddAgentToken(a, "laptop", w.user)
	for _, ag := range w.gl.Agents(w.project) {
		if ag.Name == "prod" {
			for _, tok := range w.gl.AgentTokens(&ag) {
				w.gl.MarkTokenUsed(tok.Token, time.Now().Add(-10*time.Hour))
			}
		}
	}
	for _, c := range []struct {
		file string
		args []string
		code int
		// bare: without the GitLab flags (the command takes none).
		bare bool
	}{
		{"agent-list.txt", []string{"agent", "list"}, 0, false},
		{"agent-get.txt", []string{"agent", "get", "prod"}, 0, false},
		{"agent-get-unknown.txt", []string{"agent", "get", "nope"}, 1, false},
		{"token-list.txt", []string{"token", "list", "prod"}, 0, false},
		{"token-list-never-used.txt", []string{"token", "list", "staging"}, 0, false},
		{"install-dry-run-installed.txt", []string{"install", "prod", "--dry-run", "--no-config"}, 0, false},
		{"upgrade-up-to-date.txt", []string{"upgrade", "prod"}, 0, true},
		{"upgrade-unknown-key.txt", []string{"upgrade", "prod", "--set", "replica=3"}, 1, true},
		{"token-revoke-unknown.txt", []string{"token", "revoke", "prod", "999"}, 1, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			run := w.run
			if c.bare {
				run = w.runBare
			}
			code, out, errOut := run(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			got := "$ kubectl gitlab-agent " + strings.Join(c.args, " ") + "\n" + out + "--- stderr\n" + errOut
			golden.Compare(t, filepath.Join("testdata", "golden", c.file), []byte(stable(got, w.gl.URL)))
		})
	}
}

var tokenNameTime = regexp.MustCompile(`kubectl-gitlab-agent-\d{8}-\d{6}-[0-9a-z]+-[0-9a-z]+`)

// stable is out with what differs from run to run replaced.
func stable(out, gitlabURL string) string {
	out = strings.ReplaceAll(out, gitlabURL, "http://gitlab.test")
	return tokenNameTime.ReplaceAllString(out, "kubectl-gitlab-agent-YYYYMMDD-HHMMSS-random")
}
