package cmd

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// helpFlag is a flag line of --help: "  -n, --namespace string   ...".
var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)

// ownWords are kubectl's flags that a command describes in its own words,
// meaning the same: the kubeconfig file kubeconfig writes is the one kubectl
// reads; render's namespace is where the objects go, as -n would say.
var ownWords = map[string]bool{"kubeconfig kubeconfig": true, "render namespace": true}

// TestEveryCommandTakesTheKubectlFlagsItShows: a flag of kubectl's that a
// command lists in --help is kubectl's flag there, with its type,
// shorthand and meaning (no command's own flag shadows it, as diff's
// --context once did), and a value kubectl would take parses: --context
// grp/proj:demo, GitLab's own context name, on every command.
func TestEveryCommandTakesTheKubectlFlagsItShows(t *testing.T) {
	ref := pflag.NewFlagSet("kubectl", pflag.ContinueOnError)
	genericclioptions.NewConfigFlags(true).AddFlags(ref)
	values := map[string]string{"string": "grp/proj:demo", "stringArray": "grp/proj:demo", "bool": "true"}
	root := NewRootCmd(fakeFactory{fake.New()}, genericiooptions.NewTestIOStreamsDiscard())
	checked := map[string]int{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.Hidden && sub.Name() != "help" {
				walk(sub)
			}
		}
		if !c.Runnable() {
			return
		}
		path := strings.Fields(c.CommandPath())[len(strings.Fields(root.CommandPath())):]
		var help bytes.Buffer
		if code := Execute(fakeFactory{fake.New()}, append(append([]string{}, path...), "--help"), genericiooptions.IOStreams{In: strings.NewReader(""), Out: &help, ErrOut: &help}); code != 0 {
			t.Fatalf("%s --help: exit %d\n%s", c.CommandPath(), code, help.String())
		}
		for _, m := range helpFlag.FindAllStringSubmatch(help.String(), -1) {
			want := ref.Lookup(m[1])
			if want == nil {
				continue
			}
			got := c.Flags().Lookup(m[1])
			if got == nil {
				t.Errorf("%s: --help shows --%s, which it does not take", c.CommandPath(), m[1])
				continue
			}
			if got.Value.Type() != want.Value.Type() || got.Shorthand != want.Shorthand || (got.Usage != want.Usage && !ownWords[c.Name()+" "+m[1]]) {
				t.Errorf("%s --%s is not kubectl's: %s -%s %q, kubectl's %s -%s %q", c.CommandPath(), m[1],
					got.Value.Type(), got.Shorthand, got.Usage, want.Value.Type(), want.Shorthand, want.Usage)
				continue
			}
			v, ok := values[want.Value.Type()]
			if !ok {
				t.Fatalf("no test value for kubectl's --%s (%s)", m[1], want.Value.Type())
			}
			var out bytes.Buffer
			args := append(append([]string{}, path...), "--"+m[1]+"="+v, "--help")
			if code := Execute(fakeFactory{fake.New()}, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}); code != 0 {
				t.Errorf("%v: exit %d: %s", args, code, out.String())
			}
			checked[m[1]]++
		}
	}
	walk(root)
	// The commands that talk to a cluster show the flags: diff, render's
	// --namespace, install, upgrade, uninstall, status, doctor and more.
	if checked["context"] < 7 || checked["kubeconfig"] < 7 || checked["namespace"] < 7 {
		t.Errorf("kubectl's flags found on too few commands: %v", checked)
	}
}
