package cmd

import (
	"os"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// TestReadmeExamplesRunAsWritten: every `kubectl gitlab-agent ...` line of
// the README names a command, takes only its flags and the arguments it
// accepts, and gives --project wherever the command takes one (outside a
// clone of the project nothing else names it).
func TestReadmeExamplesRunAsWritten(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	examples := 0
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			rest, ok := strings.CutPrefix(part, "kubectl gitlab-agent ")
			if !ok || !strings.HasPrefix(lines[i], "    ") {
				continue
			}
			rest, _, _ = strings.Cut(rest, "#")
			rest, _, _ = strings.Cut(rest, "|")
			rest, _, _ = strings.Cut(rest, "&")
			examples++
			checkExample(t, i+1, strings.Fields(rest))
		}
	}
	if examples < 10 {
		t.Errorf("found %d examples in the README; the parser missed them", examples)
	}
}

func checkExample(t *testing.T, line int, args []string) {
	t.Helper()
	root := NewRootCmd(fakeFactory{cluster: fake.New()}, genericiooptions.NewTestIOStreamsDiscard())
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("README line %d: %v names no command (%v)", line, args, err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("README line %d: %v: %v", line, args, err)
		return
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			t.Errorf("README line %d: %v: %v", line, args, err)
		}
	}
	if cmd.Flags().Lookup("project") != nil && !cmd.Flags().Changed("project") {
		t.Errorf("README line %d: %v: give --project", line, args)
	}
}
