package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// helpFlag is a flag line of --help: "  -n, --namespace string   ...".
var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)

// ownWords are kubectl's flags that a command describes in its own words,
// meaning the same: the kubeconfig file kubeconfig writes is the one kubectl
// reads; render's namespace is where the objects go, as -n would say.
var ownWords = map[string]bool{"kubeconfig kubeconfig": true, "render namespace": true}

// ownWordsEverywhere are kubectl's flags that every command having them
// describes in its own words: --request-timeout bounds each request to
// GitLab too (on the commands without kubectl's flags, GitLab's alone), and
// says what 0 means there.
var ownWordsEverywhere = map[string]bool{requestTimeoutFlag: true}

// TestEveryCommandTakesTheKubectlFlagsItShows: a flag of kubectl's that a
// command lists in --help is kubectl's flag there, with its type and
// shorthand and (but for ownWords) its usage: no command's own flag shadows
// one, as diff's --context (lines of context) once did. That each value
// reaches the cluster client is TestContextReachesTheCluster's.
func TestEveryCommandTakesTheKubectlFlagsItShows(t *testing.T) {
	ref := pflag.NewFlagSet("kubectl", pflag.ContinueOnError)
	genericclioptions.NewConfigFlags(true).AddFlags(ref)
	values := map[string]string{"string": "grp/proj:demo", "stringArray": "grp/proj:demo", "bool": "true"}
	root := NewRootCmd(fakeFactory{cluster: fake.New()}, genericiooptions.NewTestIOStreamsDiscard())
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
		if code := Execute(fakeFactory{cluster: fake.New()}, append(append([]string{}, path...), "--help"), genericiooptions.IOStreams{In: strings.NewReader(""), Out: &help, ErrOut: &help}); code != 0 {
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
			if got.Value.Type() != want.Value.Type() || got.Shorthand != want.Shorthand || (got.Usage != want.Usage && !ownWords[c.Name()+" "+m[1]] && !ownWordsEverywhere[m[1]]) {
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
			if code := Execute(fakeFactory{cluster: fake.New()}, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}); code != 0 {
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

// contextRecorder is fakeFactory that records the kubeconfig context each
// client is asked for.
type contextRecorder struct {
	fakeFactory
	seen *[]string
}

func (f contextRecorder) record(g genericclioptions.RESTClientGetter) {
	if cf, ok := g.(*genericclioptions.ConfigFlags); ok && cf.Context != nil {
		*f.seen = append(*f.seen, *cf.Context)
	}
}

func (f contextRecorder) DiffCluster(g genericclioptions.RESTClientGetter) (diff.Cluster, error) {
	f.record(g)
	return f.fakeFactory.DiffCluster(g)
}

func (f contextRecorder) Cluster(g genericclioptions.RESTClientGetter) (install.Cluster, error) {
	f.record(g)
	return f.fakeFactory.Cluster(g)
}

func (f contextRecorder) Flux(g genericclioptions.RESTClientGetter) (flux.Cluster, error) {
	f.record(g)
	return f.fakeFactory.Flux(g)
}

func (f contextRecorder) Doctor(g genericclioptions.RESTClientGetter) (doctor.Cluster, error) {
	f.record(g)
	return f.fakeFactory.Doctor(g)
}

// TestContextReachesTheCluster: on every command that shows kubectl's
// --context, GitLab's own context name (grp/proj:demo) is the context the
// command's cluster client is built for.
func TestContextReachesTheCluster(t *testing.T) {
	w := newInProcess(t)
	manifest := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gitlabFlags := []string{"--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents"}
	runs := map[string][]string{
		"apps list":      {"apps", "list"},
		"apps get":       {"apps", "get", "web"},
		"apps diff":      append([]string{"apps", "diff", "web"}, gitlabFlags[:4]...),
		"apps reconcile": {"apps", "reconcile", "web"},
		"apps suspend":   {"apps", "suspend", "web"},
		"apps resume":    {"apps", "resume", "web"},
		"apps history":   {"apps", "history", "web"},
		"apps rollback":  append([]string{"apps", "rollback", "web", "--to", "1234567"}, gitlabFlags[:4]...),
		"bootstrap":      append([]string{"bootstrap", "prod", "--dry-run"}, gitlabFlags...),
		"diff":           {"diff", "-f", manifest},
		"doctor":         append([]string{"doctor", "prod"}, gitlabFlags...),
		"install":        append([]string{"install", "prod", "--dry-run"}, gitlabFlags...),
		"status":         append([]string{"status", "prod"}, gitlabFlags...),
		"token rotate":   append([]string{"token", "rotate", "prod"}, gitlabFlags...),
		"uninstall":      {"uninstall", "prod", "--yes"},
		"upgrade":        {"upgrade", "prod", "--dry-run"},
	}
	root := NewRootCmd(fakeFactory{cluster: fake.New()}, genericiooptions.NewTestIOStreamsDiscard())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || !c.Runnable() || c.Flags().Lookup("context") == nil {
			return
		}
		name := strings.Join(strings.Fields(c.CommandPath())[len(strings.Fields(root.CommandPath())):], " ")
		args, ok := runs[name]
		if !ok {
			t.Errorf("%s takes --context: add it to this test", name)
			return
		}
		var seen []string
		var out bytes.Buffer
		Execute(contextRecorder{fakeFactory{cluster: w.cluster}, &seen}, append(append([]string{}, args...), "--context", "grp/proj:demo"),
			genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		if len(seen) == 0 || slices.ContainsFunc(seen, func(s string) bool { return s != "grp/proj:demo" }) {
			t.Errorf("%s --context grp/proj:demo: the cluster client was asked for contexts %q\n%s", name, seen, out.String())
		}
		delete(runs, name)
	}
	walk(root)
	for name := range runs {
		t.Errorf("%s no longer takes --context", name)
	}
}
