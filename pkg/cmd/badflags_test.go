package cmd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// refusingFactory hands out clients that record, and refuse, every request
// made with them: the cluster is an empty fake that records its calls,
// GitLab's transport and KAS's dialer record and fail.
type refusingFactory struct {
	cluster *fake.Cluster

	mu       sync.Mutex
	requests []string
}

func (f *refusingFactory) record(what string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, what)
	return errors.New("refused: this test makes no requests")
}

func (f *refusingFactory) made() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string{}, f.requests...)
	for _, c := range f.cluster.Calls() {
		out = append(out, "cluster "+c.Method)
	}
	return out
}

func (f *refusingFactory) DiffCluster(genericclioptions.RESTClientGetter) (diff.Cluster, error) {
	return f.cluster, nil
}

func (f *refusingFactory) Cluster(genericclioptions.RESTClientGetter) (install.Cluster, error) {
	return f.cluster, nil
}

func (f *refusingFactory) Flux(genericclioptions.RESTClientGetter) (flux.Cluster, error) {
	return f.cluster, nil
}

func (f *refusingFactory) Doctor(genericclioptions.RESTClientGetter) (doctor.Cluster, error) {
	return f.cluster, nil
}

func (f *refusingFactory) GitLab(o gitlab.Options) (*gitlab.Client, error) {
	o.HTTPClient = &http.Client{Transport: refusingTransport{f}}
	return newGitLab(o)
}

func (f *refusingFactory) KASDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(_ context.Context, _, addr string) (net.Conn, error) {
		return nil, f.record("dial KAS at " + addr)
	}
}

func (f *refusingFactory) HTTPClient() *http.Client {
	return &http.Client{Transport: refusingTransport{f}}
}

type refusingTransport struct{ f *refusingFactory }

func (t refusingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, t.f.record(r.Method + " " + r.URL.Host + r.URL.Path)
}

// badFlags holds, for every runnable command, runs with one invalid flag
// value (or argument) and a part of the error each must give.
var badFlags = map[string][]struct {
	args []string
	want string
}{
	"version":           {{[]string{"-o", "bogus"}, `unknown output format "bogus"`}},
	"render":            {{[]string{"demo", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"demo", "--chart-version", "0.0.1"}, "0.0.1"}, {[]string{"demo", "--set-json", "replicas=[2"}, "--set-json replicas: the value is not JSON"}, {[]string{"demo", "-f", "http://example.com/values.yaml"}, "only https URLs"}},
	"diff":              {{[]string{"-f", "x.yaml", "-U", "-1"}, "--unified must be 0 or more"}, {[]string{"-f", "x.yaml", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"-f", "x.yaml", "--prune"}, "--prune with -f needs -l"}},
	"install":           {{[]string{"prod", "--timeout", "0s"}, "--timeout must be positive"}, {[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "--dry-run=maybe"}, `invalid --dry-run value "maybe"`}, {[]string{"prod", "--receptive-url", "http://x"}, `--receptive-url "http://x": want grpcs://HOST:PORT`}, {[]string{"prod", "--receptive-url", "grpcs://x:99999"}, "the port must be 1 to 65535"}, {[]string{"prod", "--receptive-tls-host", "x"}, "go with --receptive-url"}, {[]string{"prod", "--receptive-url", "grpc://x:8182", "--receptive-tls-host", "x"}, "are for grpcs:// URLs"}, {[]string{"prod", "--receptive-url", "grpcs://x:8182", "--receptive-tls-host", "a b"}, `--receptive-tls-host "a b": want a host name`}, {[]string{"prod", "--receptive-url", "grpcs://x:8182", "--chart-version", "2.6.2"}, "chart 2.6.2 has no receptive agents"}, {[]string{"prod", "--receptive-url", "grpcs://x:8182", "--set", "config.api.jwtPublicKey=k"}, "do not set it"}, {[]string{"prod", "--receptive-url", "grpcs://x:8182", "--receptive-ca-file", "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"}},
	"apps list":         {{[]string{"-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"extra"}, "needs no arguments"}},
	"apps diff":         {{[]string{"web", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"web", "-U", "-1"}, "--unified must be 0 or more"}, {[]string{"web", "--revision", "main"}, `--revision "main" is not a commit SHA`}},
	"apps get":          {{[]string{"web", "-o", "bogus"}, `unknown output format "bogus"`}},
	"apps reconcile":    {{[]string{"web", "--timeout", "0s"}, "--timeout must be positive"}, {[]string{"web", "-o", "bogus"}, `unknown output format "bogus"`}},
	"apps suspend":      {{[]string{"web", "-o", "bogus"}, `unknown output format "bogus"`}},
	"apps resume":       {{[]string{"web", "-o", "bogus"}, `unknown output format "bogus"`}},
	"apps history":      {{[]string{"web", "-o", "bogus"}, `unknown output format "bogus"`}},
	"apps rollback":     {{[]string{"web"}, "--to is required"}, {[]string{"web", "--to", "main"}, `--to "main" is not a commit SHA`}, {[]string{"web", "--to", "abc1234", "-o", "bogus"}, `unknown output format "bogus"`}},
	"bootstrap":         {{[]string{"prod", "--manifest-path", "../x"}, "--manifest-path: the manifest path \"../x\" leaves the repository"}, {[]string{"prod", "--manifest-path", "/etc"}, "is absolute"}, {[]string{"prod", "--branch", "a..b"}, `--branch "a..b"`}, {[]string{"prod", "--flux-namespace", "Flux"}, `--flux-namespace "Flux"`}, {[]string{"prod", "--no-wait"}, "--no-wait is not for bootstrap"}, {[]string{"prod", "--timeout", "0s"}, "--timeout must be positive"}, {[]string{"prod", "--dry-run=maybe"}, `invalid --dry-run value "maybe"`}},
	"upgrade":           {{[]string{"prod", "--timeout", "-1s"}, "--timeout must be positive"}, {[]string{"prod", "--dry-run=all"}, `invalid --dry-run value "all"`}},
	"uninstall":         {{[]string{"prod", "--timeout", "0s", "--revoke-tokens"}, "--timeout must be positive"}, {[]string{"prod", "--revoke-tokens", "--dry-run=yes"}, `invalid --dry-run value "yes"`}},
	"status":            {{[]string{"-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"Bad_Name"}, "Bad_Name"}, {[]string{"-o", "jsonpath="}, "-o jsonpath= needs a template"}, {[]string{"--no-subgroups"}, "--no-subgroups needs --group"}, {[]string{"--group", "g", "prod"}, "takes no agent NAME"}, {[]string{"--group", "g", "-o", "bogus"}, `unknown output format "bogus"`}},
	"doctor":            {{[]string{"prod", "--timeout", "0s"}, "--timeout must be positive"}, {[]string{"--timeout", "0s"}, "--timeout must be positive"}, {[]string{"-o", "bogus"}, `unknown output format "bogus"`}},
	"kubeconfig":        {{[]string{"prod", "--kas-proxy-url", "ftp://kas.example.com"}, "--kas-proxy-url"}, {[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "--cache-mode", "bogus"}, `--cache-mode "bogus": give keyring, file or none`}, {[]string{"prod", "--cache-mode", "none"}, "--cache-mode none: kubectl runs get-token for every request"}},
	"get-token":         {{[]string{"--agent-id", "1", "--token-expiry", "0"}, "--token-expiry 0"}, {[]string{"--agent-id", "0"}, "--agent-id is required"}, {[]string{"--agent-id", "1", "--cache-mode", "bogus"}, `--cache-mode "bogus": give keyring, file or none`}, {[]string{"--agent-id", "1", "--cache-mode", "none"}, "--cache-mode none: kubectl runs get-token for every request"}},
	"token-cache list":  {{[]string{"-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"-o", "custom-columns=ID"}, `"ID" is not HEADER:PATH`}, {[]string{"--cache-mode", "bogus"}, `--cache-mode "bogus": give keyring, file or none`}, {[]string{"--cache-mode", "none"}, "--cache-mode none caches nothing"}},
	"token-cache clear": {{[]string{"--revoke", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"--revoke", "--cache-mode", "bogus"}, `--cache-mode "bogus": give keyring, file or none`}},
	"proxy":             {{[]string{"prod", "--port", "70000"}, "--port 70000"}, {[]string{"prod", "--token-expiry", "400"}, "--token-expiry 400"}, {[]string{"prod", "--address", "0.0.0.0"}, "--accept-hosts"}, {[]string{"prod", "--cache-mode", "bogus"}, `--cache-mode "bogus": give keyring, file or none`}},
	"agent list":        {{[]string{"-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"-o", "jsonpath={.agents["}, "-o jsonpath: "}, {[]string{"--request-timeout", "soon"}, `--request-timeout "soon"`}},
	"agent get":         {{[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}},
	"agent register":    {{[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"Bad_Name"}, "Bad_Name"}, {[]string{"prod", "--dry-run=server"}, "GitLab has no server-side dry run"}},
	"agent delete":      {{[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "--dry-run=server"}, "GitLab has no server-side dry run"}, {[]string{"prod", "--dry-run=bogus"}, `invalid --dry-run value "bogus": use "none" or "client"`}},
	"agent config show": {{[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}},
	"agent config set":  {{[]string{"prod", "--access-as", "root"}, "--access-as must be agent or user"}, {[]string{"prod", "--ci-access-project", "apps/web", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "--ci-access-project", "apps/web", "--dry-run=server"}, "GitLab has no server-side dry run"}},
	"token list":        {{[]string{"prod", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "-o", "custom-columns=ID:.id["}, "-o custom-columns: column ID"}, {[]string{"prod", "-o", "jsonpath"}, `unknown output format "jsonpath"`}},
	"token create":      {{[]string{"prod", "--show-token"}, "--name is required"}, {[]string{"prod", "--name", "ci", "--show-token", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "--name", "ci", "--show-token", "--dry-run=server"}, "GitLab has no server-side dry run"}},
	"token revoke":      {{[]string{"prod", "7", "-o", "bogus"}, `unknown output format "bogus"`}, {[]string{"prod", "seven"}, "seven"}},
	"token rotate":      {{[]string{"prod", "--timeout", "0s"}, "--timeout must be positive"}, {[]string{"prod", "--dry-run=maybe"}, `invalid --dry-run value "maybe": use "none", "client" or "server"`}, {[]string{"prod", "--all"}, "NAME and --all exclude each other"}, {nil, "needs NAME, or --all"}, {[]string{"prod", "--older-than", "90d"}, "--older-than goes with --all"}, {[]string{"--all", "--older-than", "90"}, `invalid --older-than "90": give days (90d) or a duration (36h)`}, {[]string{"--all", "--older-than", "0d"}, `invalid --older-than "0d": it must be more than 0`}, {[]string{"--all", "--older-than", "-36h"}, `invalid --older-than "-36h"`}, {[]string{"--all", "--older-than", "99999999999d"}, "at most 36500 days"}, {[]string{"--all", "--timeout", "0s"}, "--timeout must be positive"}},
	"fleet pipeline":    {{nil, "--group is required"}, {[]string{"--group", "g", "--outdated", "--disconnected"}, "exclude each other"}, {[]string{"--group", "g", "--image", " "}, "--image is empty"}, {[]string{"--group", "g", "upgrade"}, "give the command to run after --"}, {[]string{"--group", "g", "--", "bogus"}, `"bogus" is not a command`}, {[]string{"--group", "g", "--", "upgrade", "--context", "x"}, "ARGS hold --context"}, {[]string{"--group", "g", "--", "render", "x"}, "render cannot run in a fleet job"}, {[]string{"--group", "g", "--agent", "a/b:x\"; rm -rf /", "--", "status"}, "invalid agent name"}, {[]string{"--group", "g", "--agent", "nocolon", "--", "status"}, "want PROJECT_PATH:AGENT_NAME"}},
	"completion":        {{[]string{"tcsh"}, "tcsh"}},
	"__generate":        {{nil, "accepts 1 arg(s), received 0"}},
}

// TestBadFlagsMakeNoRequest: every command refuses an invalid flag value
// with one line and a non-zero exit before anything is asked of GitLab, the
// cluster or KAS (kubectl's rule: Complete and Validate make no request).
func TestBadFlagsMakeNoRequest(t *testing.T) {
	t.Setenv("GITLAB_TOKEN", "glpat-not-a-real-token-for-tests")
	for _, k := range []string{"GITLAB_URL", "CI_JOB_TOKEN", "CI_PROJECT_ID", "CI_SERVER_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Chdir(t.TempDir()) // no git checkout to take a project from

	runnable := map[string]*cobra.Command{}
	root := NewRootCmd(&refusingFactory{cluster: fake.New()}, genericiooptions.NewTestIOStreamsDiscard())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() {
			runnable[strings.TrimPrefix(c.CommandPath(), root.CommandPath()+" ")] = c
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for path := range runnable {
		if _, ok := badFlags[path]; !ok {
			t.Errorf("command %q has no bad-flag case: add one to badFlags", path)
		}
	}
	for path, cases := range badFlags {
		if runnable[path] == nil {
			t.Errorf("badFlags names %q, which is not a command", path)
			continue
		}
		for _, tc := range cases {
			args := append(strings.Fields(path), tc.args...)
			// Away from the user's GitLab and git checkout.
			for _, fl := range [][2]string{{"gitlab-url", "https://gitlab.example.com"}, {"project", "infra/agents"}} {
				if runnable[path].Flags().Lookup(fl[0]) != nil {
					args = append(args, "--"+fl[0], fl[1])
				}
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				f := &refusingFactory{cluster: fake.New()}
				var out, errOut bytes.Buffer
				code := Execute(f, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
				if code == 0 {
					t.Fatalf("exit 0; want an error")
				}
				lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tc.want) {
					t.Errorf("stderr %q: want one error line with %q", errOut.String(), tc.want)
				}
				if out.Len() != 0 {
					t.Errorf("stdout %q: want nothing", out.String())
				}
				if made := f.made(); len(made) > 0 {
					t.Errorf("requests made before the bad flag was refused: %v", made)
				}
			})
		}
	}
}
