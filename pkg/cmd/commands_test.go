package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// fakeFactory gives commands an in-memory cluster, and real GitLab clients
// and KAS dialers (for the fake GitLab and KAS of the test).
type fakeFactory struct {
	cluster *fake.Cluster
	realOutside
}

func (f fakeFactory) DiffCluster(genericclioptions.RESTClientGetter) (diff.Cluster, error) {
	return f.cluster, nil
}

func (f fakeFactory) Cluster(genericclioptions.RESTClientGetter) (install.Cluster, error) {
	return f.cluster, nil
}

func (f fakeFactory) Flux(genericclioptions.RESTClientGetter) (flux.Cluster, error) {
	return f.cluster, nil
}

func (f fakeFactory) Doctor(genericclioptions.RESTClientGetter) (doctor.Cluster, error) {
	return f.cluster, nil
}

// inProcess is a fake GitLab, a maintainer's token in a file, and an
// in-memory cluster whose agentk connects when its Deployment is applied.
type inProcess struct {
	gl        *fakegitlab.Server
	project   *fakegitlab.Project
	user      *fakegitlab.User
	tokenFile string
	cluster   *fake.Cluster
}

func newInProcess(t *testing.T) *inProcess {
	t.Helper()
	w := &inProcess{gl: fakegitlab.New(), cluster: fake.New()}
	t.Cleanup(w.gl.Close)
	var token string
	w.project = w.gl.AddProject("infra/agents")
	w.user, token = w.gl.AddMember(w.project, "maria", fakegitlab.Maintainer)
	w.tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(w.tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"GITLAB_URL", "GITLAB_TOKEN", "CI_JOB_TOKEN", "CI_PROJECT_ID", "CI_SERVER_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("GLAB_CONFIG_DIR", t.TempDir()) // no credential of the machine's (upgrade asks GitLab when it has one)
	w.cluster.OnApply = func(o *unstructured.Unstructured) {
		if o.GetKind() != "Deployment" {
			return
		}
		for _, ref := range w.cluster.Objects() {
			if ref.Kind == "Secret" && ref.Namespace == o.GetNamespace() {
				if tok, ok, _ := unstructured.NestedString(w.cluster.Get(ref).Object, "data", "token"); ok {
					w.gl.MarkTokenUsed(mustDecode(t, tok), time.Now())
				}
			}
		}
	}
	return w
}

// run runs the plugin in-process with the GitLab flags for the fake.
func (w *inProcess) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	args = append(args, "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents")
	return w.runBare(t, args...)
}

func (w *inProcess) runBare(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(fakeFactory{cluster: w.cluster}, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func TestInstallInProcess(t *testing.T) {
	w := newInProcess(t)

	code, out, errOut := w.run(t, "install", "prod", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errOut)
	}
	wantPrefix := `agentk v17.3.1: the version of KAS at kas.example.com
GitLab: would register agent "prod" in infra/agents
GitLab: would commit .gitlab/agents/prod/config.yaml to main in infra/agents (ci_access for infra/agents, user_access for infra/agents, user_access as the agent)
GitLab: would create a token
Cluster: Plan: `
	if !strings.HasPrefix(out, wantPrefix) || len(w.cluster.Applied()) != 0 {
		t.Errorf("dry run printed:\n%s\nwant it to start:\n%s", out, wantPrefix)
	}

	code, out, errOut = w.run(t, "install", "prod", "--dry-run", "-o", "json")
	var plan struct {
		Agentk *struct {
			Tag    string `json:"tag"`
			Source string `json:"source"`
		} `json:"agentk"`
		Plan *struct {
			GitLab  []string `json:"gitlab"`
			Cluster *struct {
				Differs bool           `json:"differs"`
				Summary map[string]int `json:"summary"`
			} `json:"cluster"`
		} `json:"plan"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || plan.Plan == nil || plan.Plan.Cluster == nil {
		t.Fatalf("dry run -o json: exit %d, %q, %s", code, out, errOut)
	}
	if len(plan.Plan.GitLab) != 3 || !plan.Plan.Cluster.Differs || plan.Plan.Cluster.Summary["created"] == 0 {
		t.Errorf("dry run -o json: plan %+v, cluster %+v", plan.Plan.GitLab, *plan.Plan.Cluster)
	}
	if plan.Agentk == nil || plan.Agentk.Tag != "v17.3.1" || plan.Agentk.Source != "kas" {
		t.Errorf("dry run -o json: agentk %+v, want v17.3.1 from KAS", plan.Agentk)
	}

	code, out, errOut = w.run(t, "install", "prod", "--v=1")
	if code != 0 || out != "agent \"prod\" is installed in namespace gitlab-agent-prod and connected\n" {
		t.Fatalf("install: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	for _, s := range []string{`registered agent "prod" in infra/agents`, "created token", "  rollout ", "install took"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}

	code, out, errOut = w.run(t, "install", "prod", "-o", "json")
	var doc struct {
		UpToDate  bool   `json:"upToDate"`
		Connected bool   `json:"connected"`
		Namespace string `json:"namespace"`
		TokenID   int64  `json:"tokenID"`
		Agent     struct {
			Name string `json:"name"`
		} `json:"agent"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("install -o json: exit %d, %q, %s", code, out, errOut)
	}
	if !doc.UpToDate || !doc.Connected || doc.Namespace != "gitlab-agent-prod" || doc.Agent.Name != "prod" || doc.TokenID == 0 {
		t.Errorf("install -o json: %+v", doc)
	}

	code, out, _ = w.runBare(t, "upgrade", "prod", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "upToDate: true") {
		t.Errorf("upgrade -o yaml: exit %d, %q", code, out)
	}
}

// TestFlagHintsComeFromTheCommand: pkg/install says what it needs; the
// command names the flag.
func TestFlagHintsComeFromTheCommand(t *testing.T) {
	w := newInProcess(t)
	a := w.gl.AddAgent(w.project, "prod", w.user)
	w.gl.AddAgentToken(a, "one", w.user)
	w.gl.AddAgentToken(a, "two", w.user)
	code, _, errOut := w.run(t, "install", "prod", "--no-config")
	if code != 1 || !strings.Contains(errOut, "or pass --yes to revoke token") || strings.Count(errOut, "error:") != 1 {
		t.Errorf("at the token limit: exit %d, %s", code, errOut)
	}

	w = newInProcess(t)
	w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml", []byte("ci_access: [\n"))
	code, _, errOut = w.run(t, "install", "prod")
	if code != 1 || !strings.Contains(errOut, "(fix the file, or pass --no-config)") {
		t.Errorf("a broken config file: exit %d, %s", code, errOut)
	}

	// The running agent's CA cannot be read (its ConfigMap is gone): upgrade
	// names the flag that gives it again.
	w = newInProcess(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := w.run(t, "install", "prod", "--no-config", "--set-file", "config.kasCaCert="+ca); code != 0 {
		t.Fatalf("install with a CA: %s", errOut)
	}
	w.cluster.Remove(kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent"})
	code, _, errOut = w.runBare(t, "upgrade", "prod")
	if code != 1 || !strings.Contains(errOut, "give agentk its CA with --set-file config.kasCaCert=FILE") || strings.Count(errOut, "error:") != 1 {
		t.Errorf("upgrade without the CA: exit %d, %s", code, errOut)
	}
}

// TestFlagsOnlyWhereTheyMeanSomething: a flag a command would ignore is an
// unknown flag there.
func TestFlagsOnlyWhereTheyMeanSomething(t *testing.T) {
	w := newInProcess(t)
	for _, args := range [][]string{
		{"render", "demo", "--project", "x"},
		{"render", "demo", "--gitlab-url", "https://gitlab.example.com"},
		{"render", "demo", "--kubeconfig", "x"},
		{"version", "--gitlab-token-file", "x"},
		{"agent", "list", "--kubeconfig", "x"},
		{"upgrade", "prod", "--project", "x"},
		{"get-token", "--agent-id", "1", "--project", "x"},
		{"token-cache", "list", "--gitlab-url", "x"},
		{"completion", "bash", "-o", "json"},
	} {
		code, out, errOut := w.runBare(t, args...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "error: unknown ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want an unknown flag", args, code, out, errOut)
		}
	}
}

// TestEveryResultTakesJSONAndYAML: every command that prints a result has
// -o json and -o yaml.
func TestEveryResultTakesJSONAndYAML(t *testing.T) {
	// fleet pipeline's result is a CI pipeline: YAML only, for GitLab.
	noResult := map[string]bool{"completion": true, "__generate": true, "get-token": true, "proxy": true, "pipeline": true}
	root := NewRootCmd(DefaultFactory(), genericiooptions.NewTestIOStreamsDiscard())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || noResult[c.Name()] || c.Name() == "help" {
			return
		}
		f := c.Flags().Lookup("output")
		if f == nil || !strings.Contains(f.Usage, "json") || !strings.Contains(f.Usage, "yaml") {
			t.Errorf("%s has no -o json|yaml", c.CommandPath())
		}
	}
	walk(root)
}

// TestJSONAndYAMLSayTheSame: for each command that prints a result, -o yaml
// is -o json's document written as YAML. Two say it their own way: render's
// YAML is the manifests as a stream of documents (JSON: a List of them), and
// agent config show's YAML is the file itself (JSON: its content, with
// where it was read). doctor is not here: two runs of it probe the network
// and can differ (doctor_test.go checks its -o json).
func TestJSONAndYAMLSayTheSame(t *testing.T) {
	w := newInProcess(t)
	t.Setenv("HOME", t.TempDir()) // token-cache list reads an empty cache
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if code, _, errOut := w.run(t, "install", "prod", "--no-config"); code != 0 {
		t.Fatalf("install: %s", errOut)
	}
	w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml", []byte("ci_access:\n  projects:\n  - id: infra/agents\n"))
	for _, c := range []struct {
		args []string
		// bare: without the GitLab flags (the command takes none).
		bare bool
	}{
		{[]string{"version"}, true},
		{[]string{"agent", "list"}, false},
		{[]string{"agent", "get", "prod"}, false},
		{[]string{"token", "list", "prod"}, false},
		{[]string{"agent", "config", "show", "prod"}, false},
		{[]string{"status", "prod"}, false},
		{[]string{"upgrade", "prod", "--dry-run"}, true},
		{[]string{"install", "prod", "--dry-run", "--no-config"}, false},
		{[]string{"token", "rotate", "--all", "--dry-run"}, false},
		{[]string{"render", "demo"}, true},
		{[]string{"token-cache", "list"}, true},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			run := w.run
			if c.bare {
				run = w.runBare
			}
			outs, codes := map[string]string{}, map[string]int{}
			for _, format := range []string{"json", "yaml"} {
				code, out, errOut := run(t, append(c.args, "-o", format)...)
				if code != 0 || out == "" {
					t.Fatalf("-o %s: exit %d, %s", format, code, errOut)
				}
				outs[format], codes[format] = out, code
			}
			if codes["json"] != codes["yaml"] {
				t.Errorf("exit %d with -o json, %d with -o yaml", codes["json"], codes["yaml"])
			}
			var doc any
			if err := json.Unmarshal([]byte(outs["json"]), &doc); err != nil {
				t.Fatalf("-o json: %v\n%s", err, outs["json"])
			}
			yamlDoc := func(s string) any {
				t.Helper()
				b, err := yaml.YAMLToJSON([]byte(s))
				if err != nil {
					t.Fatalf("-o yaml is not YAML: %v\n%s", err, s)
				}
				var v any
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatal(err)
				}
				return withoutTimes(v)
			}
			var want, got any = withoutTimes(doc), nil
			switch strings.Join(c.args[:min(2, len(c.args))], " ") {
			case "render demo":
				want = doc.(map[string]any)["items"]
				var items []any
				for _, part := range strings.Split(outs["yaml"], "\n---\n") {
					if strings.TrimSpace(strings.TrimPrefix(part, "---\n")) != "" {
						items = append(items, yamlDoc(part))
					}
				}
				got = items
			case "agent config":
				want, got = doc.(map[string]any)["content"], outs["yaml"]
			default:
				got = yamlDoc(outs["yaml"])
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("-o json and -o yaml differ:\n%v\n%v", want, got)
			}
		})
	}
}

// withoutTimes drops what differs between two runs of a command: how long
// its steps took.
func withoutTimes(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "duration" {
				delete(v, k)
				continue
			}
			v[k] = withoutTimes(e)
		}
	case []any:
		for i, e := range v {
			v[i] = withoutTimes(e)
		}
	}
	return v
}

func mustDecode(t *testing.T, b64 string) string {
	t.Helper()
	var s []byte
	if err := json.Unmarshal([]byte(`"`+b64+`"`), &s); err != nil {
		t.Fatal(err)
	}
	return string(s)
}

// TestEmptyListsAreArrays: -o json and -o yaml print every empty list as []
// (a script's jq '.tokens[]' fails on null). Each command runs where its
// lists are empty, and each list field of its result type is checked.
func TestEmptyListsAreArrays(t *testing.T) {
	w := newInProcess(t)
	home := t.TempDir()
	t.Setenv("HOME", home) // an empty token cache
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	check := func(cmds []jsonCommand) {
		for _, c := range cmds {
			for _, format := range []string{"json", "yaml"} {
				if out := c.run(t, w, format); !strings.Contains(out, ": []") {
					t.Errorf("%s -o %s has no empty list:\n%s", c.name, format, out)
				}
			}
		}
	}
	check([]jsonCommand{
		{"agent list", []string{"agent", "list"}, false, reflect.TypeFor[agentList]()},
		{"status", []string{"status", "--no-doctor"}, false, reflect.TypeFor[statusResult]()},
		{"token-cache list", []string{"token-cache", "list"}, true, reflect.TypeFor[cachedTokenList]()},
		{"token-cache clear", []string{"token-cache", "clear"}, true, reflect.TypeFor[cacheCleared]()},
		{"uninstall", []string{"uninstall", "bare", "--yes"}, false, reflect.TypeFor[uninstallResult]()},
		{"token rotate --all", []string{"token", "rotate", "--all"}, false, reflect.TypeFor[rotateAllResult]()},
		// No credential: the cluster part only, no tokens known.
		{"status, GitLab not asked", []string{"status", "bare", "--no-doctor", "--gitlab-url", w.gl.URL}, true, reflect.TypeFor[statusResult]()},
	})
	w.gl.AddAgent(w.project, "bare", w.user)
	w.gl.SetFile(w.project, "main", ".gitlab/agents/bare/config.yaml", []byte("ci_access:\n  projects:\n  - id: infra/agents\n"))
	check([]jsonCommand{
		{"token list", []string{"token", "list", "bare"}, false, reflect.TypeFor[tokenList]()},
		{"status NAME", []string{"status", "bare", "--no-doctor"}, false, reflect.TypeFor[statusResult]()},
		{"agent config set", []string{"agent", "config", "set", "bare", "--ci-access-project", "infra/agents"}, false, reflect.TypeFor[configSetDocument]()},
	})
}

// TestUninstallTimeoutIsTheWaitsOnly: --timeout is "how long to wait for
// the objects to be gone"; a wait that took all of it does not cut short
// the revocations and the agent's deletion that follow (they once failed
// with "context deadline exceeded", half done).
func TestUninstallTimeoutIsTheWaitsOnly(t *testing.T) {
	w := newInProcess(t)
	if code, _, errOut := w.run(t, "install", "prod"); code != 0 {
		t.Fatal(errOut)
	}
	w.cluster.Hook(fake.DeleteAndWait, 1, func() error { time.Sleep(300 * time.Millisecond); return nil })
	code, out, errOut := w.run(t, "uninstall", "prod", "--yes", "--revoke-tokens", "--delete-agent", "--timeout", "200ms")
	if code != 0 || !strings.Contains(out, "tokens revoked") || !strings.Contains(out, "registration deleted") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// TestDoctorRefusesABadTimeoutFirst: without NAME doctor asks the cluster and
// GitLab which agent to check; a bad --timeout is refused before that.
func TestDoctorRefusesABadTimeoutFirst(t *testing.T) {
	w := newInProcess(t)
	for _, v := range []string{"0", "-1s"} {
		code, _, errOut := w.run(t, "doctor", "--timeout", v)
		if code == 0 || !strings.Contains(errOut, "--timeout must be positive") {
			t.Errorf("--timeout %s: exit %d, %s", v, code, errOut)
		}
	}
	if n := len(w.gl.Requests()); n != 0 || len(w.cluster.Calls()) != 0 {
		t.Errorf("%d GitLab requests and cluster calls %v before the refusal", n, w.cluster.Calls())
	}
}

func TestProxyAndGetTokenFlagRanges(t *testing.T) {
	w := newInProcess(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"proxy", "101", "--port", "70000"}, "--port 70000 is not a port"},
		{[]string{"proxy", "101", "--port", "-1"}, "--port -1 is not a port"},
		{[]string{"proxy", "101", "--token-expiry", "0"}, "--token-expiry 0: give 1 to 365 days"},
		{[]string{"get-token", "--agent-id", "1", "--token-expiry", "-2"}, "--token-expiry -2: give 1 to 365 days"},
		{[]string{"get-token", "--agent-id", "1", "--token-expiry", "400"}, "--token-expiry 400"},
	} {
		run := w.run
		if c.args[0] == "get-token" { // takes no --project
			run = w.runBare
		}
		code, _, errOut := run(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, errOut)
		}
	}
	if n := len(w.gl.Requests()); n != 0 {
		t.Errorf("%d GitLab requests before the refusals", n)
	}
	for addr, want := range map[string]string{
		"127.0.0.1": tunnel.DefaultAcceptHosts,
		"localhost": tunnel.DefaultAcceptHosts,
		"127.0.0.2": tunnel.DefaultAcceptHosts + `,^127\.0\.0\.2$`,
		"10.0.0.5":  tunnel.DefaultAcceptHosts,
	} {
		if got := defaultAcceptHosts(addr); got != want {
			t.Errorf("defaultAcceptHosts(%s) = %s, want %s", addr, got, want)
		}
	}
}
