package cmd

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestEveryCommandHasAnExample: every command a user can see, groups and
// the root included, shows in its help how it is run (kubectl's and helm's
// habit). A new command without an Example fails here.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := NewRootCmd(DefaultFactory(), genericiooptions.NewTestIOStreamsDiscard())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example: add one to its cobra.Command", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// helpOf is what `--help` prints for the command args.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	w := newInProcess(t)
	code, out, errOut := w.runBare(t, append(args, "--help")...)
	if code != 0 {
		t.Fatalf("%v --help: exit %d, %s", args, code, errOut)
	}
	return out
}

// TestUninstallHelpListsOnlyItsFlags: uninstall finds the install's objects
// by their labels; the render flags that only shape objects (versions,
// replicas, the KAS address, the token) would be ignored there, so they are
// not offered, and --yes says what it skips.
func TestUninstallHelpListsOnlyItsFlags(t *testing.T) {
	help := helpOf(t, "uninstall")
	for _, flag := range []string{"--agent-version", "--chart-version", "--kas-address", "--replicas", "--secret-name", "--set-file", "--token-file", "--create-namespace", "--no-wait"} {
		if strings.Contains(help, flag+" ") {
			t.Errorf("uninstall --help offers %s, which uninstall ignores", flag)
		}
	}
	for _, want := range []string{"--values", "--set ", "--namespace", "--revoke-tokens", "--delete-agent", "--timeout", "delete without asking for confirmation"} {
		if !strings.Contains(help, want) {
			t.Errorf("uninstall --help lacks %q:\n%s", want, help)
		}
	}
	w := newInProcess(t)
	if code, _, errOut := w.runBare(t, "uninstall", "prod", "--agent-version", "v1.0.0", "--yes"); code == 0 || !strings.Contains(errOut, "unknown flag: --agent-version") {
		t.Errorf("uninstall --agent-version: exit %d, %s", code, errOut)
	}
}

// TestCompletionHelpShowsEachShell: completion --help gives the line that
// loads the script in each shell it supports.
func TestCompletionHelpShowsEachShell(t *testing.T) {
	help := helpOf(t, "completion")
	for _, line := range []string{
		"source <(kubectl-gitlab_agent completion bash)",
		"source <(kubectl-gitlab_agent completion zsh)",
		"kubectl-gitlab_agent completion fish | source",
		"kubectl-gitlab_agent completion powershell | Out-String | Invoke-Expression",
	} {
		if !strings.Contains(help, line) {
			t.Errorf("completion --help lacks %q:\n%s", line, help)
		}
	}
}
