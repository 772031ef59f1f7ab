package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// TestRequestTimeoutAgainstSilentGitLab: against a GitLab that accepts
// connections and never answers, --request-timeout bounds each try (the
// GitLab flags' own, and kubectl's on a command that has both groups);
// the command fails after the two tries its retry line announced, with one
// error line that names the timeout.
func TestRequestTimeoutAgainstSilentGitLab(t *testing.T) {
	for _, args := range [][]string{
		{"agent", "list"},
		{"install", "prod", "--dry-run"}, // kubectl's --request-timeout, shared
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			w := newInProcess(t)
			url, conns := fakegitlab.Silent(t)
			host := strings.TrimPrefix(url, "http://")
			type result struct {
				code        int
				out, errOut string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errOut := w.runBare(t, append(args, "--request-timeout", "1s", "--gitlab-url", url, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents")...)
				done <- result{code, out, errOut}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute): // the bound is 2 tries of 1s and a back-off
				t.Fatal("still running after a minute")
			}
			var errLines, retryLines []string
			for _, l := range strings.Split(strings.TrimSuffix(r.errOut, "\n"), "\n") {
				switch {
				case strings.HasPrefix(l, "error: "):
					errLines = append(errLines, l)
				case strings.Contains(l, "; retrying in "):
					retryLines = append(retryLines, l)
				}
			}
			said := "GitLab at " + host + " accepted the connection but sent no answer within 1s"
			if r.code != 1 || len(errLines) != 1 || !strings.Contains(errLines[0], said+" (2 tries)") || !strings.Contains(errLines[0], "--request-timeout") {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.errOut)
			}
			if len(retryLines) != 1 || !strings.HasPrefix(retryLines[0], said+"; retrying in ") || !strings.HasSuffix(retryLines[0], "(try 2 of 2)") {
				t.Errorf("retry lines %q", retryLines)
			}
			if n := conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// TestDoctorTakesRequestTimeout: doctor's GitLab checks wait
// --request-timeout for each answer, within each check's bound.
func TestDoctorTakesRequestTimeout(t *testing.T) {
	w := newInProcess(t)
	url, _ := fakegitlab.Silent(t)
	host := strings.TrimPrefix(url, "http://")
	code, out, errOut := w.runBare(t, "doctor", "prod", "--request-timeout", "1s", "--gitlab-url", url, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents")
	if code == 0 || !strings.Contains(out, "GitLab at "+host+" accepted the connection but sent no answer within 1s (2 tries)") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}
