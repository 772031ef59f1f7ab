package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
)

// ciFile is the worked example whose .gitlab-ci.yml the runner below runs.
const ciFile = "../../docs/ci.md"

// pipeline is the part of a .gitlab-ci.yml the runner below understands.
type pipeline struct {
	Variables map[string]string
	Default   ciJob
	Jobs      map[string]ciJob
}

type ciJob struct {
	Stage        string            `json:"stage"`
	Variables    map[string]string `json:"variables"`
	BeforeScript []string          `json:"before_script"`
	Script       []string          `json:"script"`
	Rules        []struct {
		If   string `json:"if"`
		When string `json:"when"`
	} `json:"rules"`
	// AllowFailure is true, false or {exit_codes: [...]}.
	AllowFailure json.RawMessage `json:"allow_failure"`
	Environment  any             `json:"environment"`
}

// readPipeline takes the first ```yaml block of docs/ci.md. A key the
// runner does not know fails the test, so the example cannot say more than
// the test runs.
func readPipeline(t *testing.T) pipeline {
	t.Helper()
	b, err := os.ReadFile(ciFile)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("%s has no ```yaml block", ciFile)
	}
	var top map[string]json.RawMessage
	if err := yaml.Unmarshal([]byte(block), &top); err != nil {
		t.Fatalf("the .gitlab-ci.yml of %s: %v", ciFile, err)
	}
	p := pipeline{Jobs: map[string]ciJob{}}
	for k, v := range top {
		var err error
		switch k {
		case "stages":
		case "variables":
			err = json.Unmarshal(v, &p.Variables)
		case "default":
			var d struct {
				Image        string   `json:"image"`
				BeforeScript []string `json:"before_script"`
			}
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			err = dec.Decode(&d)
			p.Default.BeforeScript = d.BeforeScript
		default:
			var j ciJob
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			err = dec.Decode(&j)
			p.Jobs[k] = j
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", ciFile, k, err)
		}
	}
	return p
}

var ruleIf = regexp.MustCompile(`^\$(\w+) == (?:"([^"]*)"|\$(\w+))$`)

// runs says whether a job's rules let it run with vars, and whether only by
// hand.
func (j ciJob) runs(t *testing.T, vars map[string]string) (run, manual bool) {
	t.Helper()
	if len(j.Rules) == 0 {
		return true, false
	}
	for _, r := range j.Rules {
		m := ruleIf.FindStringSubmatch(r.If)
		if m == nil {
			t.Fatalf("rule %q: the test's runner knows only $A == \"v\" and $A == $B", r.If)
		}
		want := m[2]
		if m[3] != "" {
			want = vars[m[3]]
		}
		if vars[m[1]] == want {
			return true, r.When == "manual"
		}
	}
	return false, false
}

// allowed says whether exit code code lets the pipeline go on.
func (j ciJob) allowed(t *testing.T, code int) bool {
	t.Helper()
	if code == 0 {
		return true
	}
	if len(j.AllowFailure) == 0 {
		return false
	}
	var all bool
	if json.Unmarshal(j.AllowFailure, &all) == nil {
		return all
	}
	var codes struct {
		ExitCodes []int `json:"exit_codes"`
	}
	if err := json.Unmarshal(j.AllowFailure, &codes); err != nil {
		t.Fatalf("allow_failure %s: %v", j.AllowFailure, err)
	}
	return slices.Contains(codes.ExitCodes, code)
}

// ciEnv is a GitLab CI job's world: the fake GitLab with the agent prod-eu
// installed from infra/agents and shared with shop/web, the fake KAS in
// front of the test apiserver, the project's checkout, and the KUBECONFIG
// GitLab injects into shop/web's jobs.
type ciEnv struct {
	*gitlabEnv
	kas        *fakekas.Server
	kasCA      string
	shop       *fakegitlab.Project
	agent      fakegitlab.Agent
	jobToken   string
	dir        string // the checkout, CI_PROJECT_DIR
	home, tmp  string
	kubeconfig string
	injected   []byte
	// kasBefore is how many requests KAS had before the jobs ran.
	kasBefore int
}

func newCIEnv(t *testing.T) *ciEnv {
	t.Helper()
	needCluster(t)
	g := newGitLab(t)
	simulateAgentk(t, g)
	kas, err := fakekas.New(g.fake, cl.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kas.Close)
	g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = kas.ProxyURL() })
	// Where agentk dials KAS (a stand-in with a private CA), as /metadata says.
	ep := fakekas.NewAgentEndpoint(fakekas.WebSocket, "/")
	t.Cleanup(ep.Close)
	g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = ep.URL })
	g.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "18.0.0" })
	e := &ciEnv{gitlabEnv: g, kas: kas, kasCA: ep.CAPEM(), dir: t.TempDir(), home: t.TempDir(), tmp: t.TempDir()}
	e.agentValues(t, 2)

	// Once, by an admin with an api token: install, then share with shop/web.
	if r := g.run(t, nil, "install", "prod-eu", "--project", "infra/agents", "-f", filepath.Join(e.dir, "agent", "values.yaml")); r.code != 0 {
		t.Fatalf("install: %+v", r)
	}
	t.Cleanup(func() {
		g.run(t, nil, "uninstall", "prod-eu", "--project", "infra/agents", "--yes", "--revoke-tokens")
		_ = clientset(t).CoreV1().Namespaces().Delete(context.Background(), "shop", metav1.DeleteOptions{})
	})
	if r := g.run(t, nil, "agent", "config", "set", "prod-eu", "--project", "infra/agents", "--ci-access-project", "shop/web"); r.code != 0 {
		t.Fatalf("agent config set: %+v", r)
	}
	for _, a := range g.fake.Agents(g.project) {
		if a.Name == "prod-eu" {
			e.agent = a
		}
	}
	e.shop = g.fake.AddProject("shop/web")
	dev, _ := g.fake.AddMember(e.shop, "shop-dev", fakegitlab.Developer)
	e.jobToken = g.fake.AddJobToken(dev, e.shop)

	// The KUBECONFIG GitLab writes for a job of shop/web: one context per
	// agent shared with it, named after the agent's project.
	ca := base64PEM(kas.Certificate().Raw)
	e.injected = fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: gitlab
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: agent:%d
  user:
    token: ci:%d:%s
contexts:
- name: infra/agents:prod-eu
  context:
    cluster: gitlab
    user: agent:%d
`, kas.ProxyURL(), ca, e.agent.ID, e.agent.ID, e.jobToken, e.agent.ID)
	e.kubeconfig = filepath.Join(t.TempDir(), "KUBECONFIG")
	if err := os.WriteFile(e.kubeconfig, e.injected, 0o600); err != nil {
		t.Fatal(err)
	}
	e.kasBefore = len(kas.Requests())
	t.Cleanup(func() { e.assertNothingLeaked(t) })
	return e
}

// agentValues writes the checkout's agent/values.yaml: the replicas, and
// the CA of the KAS agentk dials.
func (e *ciEnv) agentValues(t *testing.T, replicas int) {
	t.Helper()
	writeFile(t, mkdir(t, e.dir, "agent"), "values.yaml", fmt.Sprintf("replicas: %d\nconfig:\n  kasCaCert: |\n    %s\n",
		replicas, strings.ReplaceAll(strings.TrimSpace(e.kasCA), "\n", "\n    ")))
}

func base64PEM(der []byte) string {
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return base64.StdEncoding.EncodeToString(b)
}

// vars is what GitLab sets in a job of shop/web for a pipeline of source on
// branch (empty for a merge request pipeline).
func (e *ciEnv) vars(source, branch string) map[string]string {
	return map[string]string{
		"CI": "true", "GITLAB_CI": "true",
		"CI_SERVER_URL": e.fake.URL, "CI_API_V4_URL": e.fake.URL + "/api/v4",
		"CI_PROJECT_ID": itoa(e.shop.ID), "CI_PROJECT_PATH": "shop/web", "CI_PROJECT_DIR": e.dir,
		"CI_JOB_TOKEN": e.jobToken, "CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": branch,
		"CI_DEFAULT_BRANCH": "main", "CI_REGISTRY_IMAGE": "registry.example.test/shop/web",
		"KUBECONFIG": e.kubeconfig,
	}
}

// jobResult is how a job ended.
type jobResult struct {
	code    int
	allowed bool
	log     string
}

// runJob runs a job the way a runner's sh executor does: the variables of
// the file, the job and GitLab in its environment (no GITLAB_TOKEN, no
// GITLAB_URL), before_script then script in one shell from the checkout,
// ending at the first line that fails.
func (e *ciEnv) runJob(t *testing.T, p pipeline, name string, vars map[string]string) jobResult {
	t.Helper()
	j, ok := p.Jobs[name]
	if !ok {
		t.Fatalf("%s has no job %q", ciFile, name)
	}
	env := []string{"NO_COLOR=1", "HOME=" + e.home, "XDG_CACHE_HOME=" + filepath.Join(e.home, ".cache"), "TMPDIR=" + e.tmp}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "LANG" {
			env = append(env, kv)
		}
	}
	env = append(env, envList(p.Variables, j.Variables, vars)...)
	env = append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	lines := j.BeforeScript
	if lines == nil {
		lines = p.Default.BeforeScript
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, l := range append(append([]string{}, lines...), j.Script...) {
		fmt.Fprintf(&script, "printf '%%s\\n' %s\n%s\n", shellQuote("$ "+l), l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script.String())
	cmd.Env, cmd.Dir = env, e.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := jobResult{log: out.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("job %s: %v", name, err)
	}
	r.allowed = j.allowed(t, r.code)
	e.outputs.add(r.log)
	t.Logf("job %s (exit %d):\n%s", name, r.code, r.log)
	return r
}

// sh runs one line in a job's environment with the file's variables (for
// commands the example does not show).
func (e *ciEnv) sh(t *testing.T, p pipeline, vars map[string]string, line string) jobResult {
	t.Helper()
	one := pipeline{Variables: p.Variables, Jobs: map[string]ciJob{"line": {Script: []string{line}}}}
	return e.runJob(t, one, "line", vars)
}

func envList(maps ...map[string]string) []string {
	var out []string
	for _, m := range maps {
		for k, v := range m {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// assertNothingLeaked: the job token was printed nowhere, written nowhere
// but in GitLab's own KUBECONFIG, which no command changed.
func (e *ciEnv) assertNothingLeaked(t *testing.T) {
	t.Helper()
	for _, o := range e.outputs.all() {
		if strings.Contains(o, e.jobToken) {
			t.Errorf("the job token was printed:\n%s", o)
		}
	}
	if b, err := os.ReadFile(e.kubeconfig); err != nil || !bytes.Equal(b, e.injected) {
		t.Errorf("GitLab's KUBECONFIG changed (%v):\n%s", err, b)
	}
	for _, dir := range []string{e.dir, e.home, e.tmp} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(e.jobToken)) {
				t.Errorf("the job token was written to %s", p)
			}
			return nil
		})
	}
}

// TestCIExamplePipeline runs docs/ci.md's .gitlab-ci.yml: a merge request
// before the first deploy (drift: a warning), the deploy on main, a merge
// request that changes nothing and one that changes a manifest, and the
// agent's own upgrade by hand, all through GitLab's KUBECONFIG and KAS with
// only the job token.
func TestCIExamplePipeline(t *testing.T) {
	e := newCIEnv(t)
	p := readPipeline(t)
	for _, name := range []string{"diff", "deploy", "agent-upgrade"} {
		if _, ok := p.Jobs[name]; !ok {
			t.Fatalf("%s has no job %s", ciFile, name)
		}
	}
	app, err := os.ReadFile("testdata/ci-app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifests := func(data string) {
		writeFile(t, mkdir(t, e.dir, "deploy"), "app.yaml", strings.Replace(string(app), "  DATA\n", data, 1))
	}
	manifests("  greeting: hello\n  color: blue\n")
	e.agentValues(t, 3)

	mr := e.vars("merge_request_event", "")
	main := e.vars("push", "main")
	pipelineRun := func(vars map[string]string, clicked ...string) map[string]jobResult {
		t.Helper()
		out := map[string]jobResult{}
		for _, stage := range []string{"check", "deploy"} {
			for _, name := range slices.Sorted(maps.Keys(p.Jobs)) {
				j := p.Jobs[name]
				run, manual := j.runs(t, vars)
				if j.Stage != stage || !run || (manual && !slices.Contains(clicked, name)) {
					continue
				}
				r := e.runJob(t, p, name, vars)
				out[name] = r
				if !r.allowed {
					return out
				}
			}
		}
		return out
	}

	// Before anything is deployed the MR's diff sees objects to create:
	// exit 1, a warning, not a failure.
	jobs := pipelineRun(mr)
	if r, ok := jobs["diff"]; !ok || r.code != 1 || !r.allowed || !strings.Contains(r.log, "ConfigMap/shop/web") {
		t.Fatalf("MR before the first deploy: %+v", jobs)
	}
	if _, ok := jobs["deploy"]; ok {
		t.Fatal("deploy ran in a merge request pipeline")
	}

	// On main: applied, rolled out, and the diff after it is clean.
	jobs = pipelineRun(main)
	if r, ok := jobs["deploy"]; !ok || r.code != 0 {
		t.Fatalf("deploy on main: %+v", jobs)
	}
	if _, ok := jobs["agent-upgrade"]; ok {
		t.Fatal("the manual job ran without a click")
	}
	if _, err := clientset(t).AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("the deploy job's Deployment: %v", err)
	}

	// An MR that changes nothing: exit 0.
	if r := pipelineRun(mr)["diff"]; r.code != 0 {
		t.Fatalf("MR with no change: %+v", r)
	}
	// An MR that changes a value and drops a key: exit 1, both shown.
	manifests("  greeting: bonjour\n")
	if r := pipelineRun(mr)["diff"]; r.code != 1 || !r.allowed || !strings.Contains(r.log, "ConfigMap/shop/web") {
		t.Fatalf("MR with a change: %+v", r)
	}
	jsonDiff := e.sh(t, p, mr, `kubectl gitlab-agent diff --context "$KUBE_CONTEXT" -f deploy/ -R --field-manager "$FIELD_MANAGER" -o json`)
	if jsonDiff.code != 1 || !strings.Contains(jsonDiff.log, "color") || !strings.Contains(jsonDiff.log, "bonjour") {
		t.Fatalf("the change in JSON: %+v", jsonDiff)
	}

	// The agent upgrades itself, by hand, through its own tunnel.
	jobs = pipelineRun(main, "agent-upgrade")
	if r, ok := jobs["agent-upgrade"]; !ok || r.code != 0 {
		t.Fatalf("agent-upgrade: %+v", jobs)
	}
	d, err := clientset(t).AppsV1().Deployments("gitlab-agent-prod-eu").Get(context.Background(), "prod-eu-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Fatalf("the agent after agent-upgrade: %v %+v", err, d)
	}
	if n := len(e.kas.Requests()); n == 0 {
		t.Fatal("nothing went through KAS")
	}
	// Every request through KAS was forwarded as the agent (ci_access
	// impersonates no one), and every request of the jobs came with the
	// job's token, none with a personal one (there is none in the job).
	for i, r := range e.kas.Requests() {
		if r.As != "agent" {
			t.Errorf("request %s %s forwarded as %q", r.Method, r.Path, r.As)
		}
		if i >= e.kasBefore && r.Credential != "ci" {
			t.Errorf("request %s %s came with a %q credential", r.Method, r.Path, r.Credential)
		}
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	p := filepath.Join(parent, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCIClusterCommandsWithGitLabsKubeconfig: every cluster-side command
// takes GitLab's injected context with --context and works with the job
// token alone, and with no GitLab credential at all; what needs the API
// says so in one line, and so does KAS refusing a project the agent is not
// shared with.
func TestCIClusterCommandsWithGitLabsKubeconfig(t *testing.T) {
	e := newCIEnv(t)
	p := readPipeline(t)
	job := e.vars("push", "main")
	job["KAS_ADDRESS"] = e.fake.Metadata.KAS.ExternalURL
	bare := maps.Clone(job)
	delete(bare, "CI_JOB_TOKEN")
	cs := clientset(t)
	replicas := func() int32 {
		t.Helper()
		d, err := cs.AppsV1().Deployments("gitlab-agent-prod-eu").Get(context.Background(), "prod-eu-gitlab-agent-v2", metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil {
			t.Fatalf("the agent's Deployment: %v", err)
		}
		return *d.Spec.Replicas
	}
	for name, vars := range map[string]map[string]string{"job token": job, "no credential": bare} {
		t.Run(name, func(t *testing.T) {
			run := func(want int, line string) string {
				t.Helper()
				r := e.sh(t, p, vars, line)
				if r.code != want {
					t.Fatalf("exit %d, want %d:\n%s", r.code, want, r.log)
				}
				return r.log
			}
			run(0, `kubectl gitlab-agent diff prod-eu --context "$KUBE_CONTEXT" --values agent/values.yaml`)
			run(0, `kubectl gitlab-agent render prod-eu --kas-address "$KAS_ADDRESS" --values agent/values.yaml --replicas 3 | kubectl --context "$KUBE_CONTEXT" apply --server-side --force-conflicts --field-manager kubectl-gitlab-agent -f -`)
			if n := replicas(); n != 3 {
				t.Fatalf("render | apply: %d replicas", n)
			}
			if out := run(1, `kubectl gitlab-agent diff prod-eu --context "$KUBE_CONTEXT" --values agent/values.yaml -o summary`); !regexp.MustCompile(`(?m)^changed +apps/v1/Deployment/gitlab-agent-prod-eu/prod-eu-gitlab-agent-v2$`).MatchString(out) {
				t.Fatalf("diff after render | apply:\n%s", out)
			}
			run(0, `kubectl gitlab-agent upgrade prod-eu --context "$KUBE_CONTEXT" --values agent/values.yaml`)
			if n := replicas(); n != 2 {
				t.Fatalf("upgrade: %d replicas", n)
			}
			out := run(0, `kubectl gitlab-agent status prod-eu --context "$KUBE_CONTEXT"`)
			for _, want := range []string{"note: the cluster part only", "api scope", "prod-eu (GitLab not asked)", "Deployment gitlab-agent-prod-eu/prod-eu-gitlab-agent-v2: 2/2 ready", "Verdict    installed"} {
				if !strings.Contains(out, want) {
					t.Errorf("status: no %q in\n%s", want, out)
				}
			}
			out = run(0, `kubectl gitlab-agent status --context "$KUBE_CONTEXT" -o json 2>/dev/null`)
			var st struct {
				Agents []struct {
					Agent          struct{ Name string }
					Verdict        string
					GitLabNotAsked string
					Cluster        struct{ Namespace string }
					Doctor         struct{ Verdict string }
				}
			}
			// Every agent installed in the cluster (other tests' too), each
			// once, prod-eu among them.
			_, doc, _ := strings.Cut(out, "\n") // after the "$ command" line
			err := json.Unmarshal([]byte(doc), &st)
			installed := map[string]bool{}
			ds, lerr := cs.AppsV1().Deployments("").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=gitlab-agent"})
			if lerr != nil {
				t.Fatal(lerr)
			}
			for _, d := range ds.Items {
				installed[d.Labels["app.kubernetes.io/instance"]] = true
			}
			listed := map[string]bool{}
			for _, a := range st.Agents {
				listed[a.Agent.Name] = true
			}
			if len(st.Agents) != len(installed) || !maps.Equal(listed, installed) {
				t.Errorf("status -o json lists %d agents %v; the cluster has %v", len(st.Agents), slices.Sorted(maps.Keys(listed)), slices.Sorted(maps.Keys(installed)))
			}
			found := false
			for _, a := range st.Agents {
				if a.Agent.Name == "prod-eu" {
					found = a.Verdict == "installed" && a.GitLabNotAsked != "" && a.Cluster.Namespace == "gitlab-agent-prod-eu" &&
						(a.Doctor.Verdict == "healthy" || a.Doctor.Verdict == "degraded")
				}
			}
			if err != nil || !found {
				t.Errorf("status -o json (%v):\n%s", err, out)
			}
			out = run(0, `kubectl gitlab-agent doctor prod-eu --context "$KUBE_CONTEXT"`)
			for _, want := range []string{"PASS  cluster-reachable", "PASS  agent-pods", "PASS  kas-tls", "SKIP  agent-registered"} {
				if !strings.Contains(out, want) {
					t.Errorf("doctor: no %q in\n%s", want, out)
				}
			}
			// What needs GitLab's API says what the job lacks, in one line.
			out = run(1, `kubectl gitlab-agent token list prod-eu --project infra/agents`)
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "api scope") || !strings.HasPrefix(lines[1], "error: ") {
				t.Errorf("token list in a job:\n%s", out)
			}
		})
	}

	// Without GitLab's KUBECONFIG at hand: kubeconfig --ci writes a context
	// from the job token alone (the agent ID read from GitLab's context),
	// and kubectl reaches the cluster through KAS with it.
	caFile := filepath.Join(t.TempDir(), "kas-proxy-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.kas.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	own := maps.Clone(job)
	own["KAS_CA"], own["OWN_KUBECONFIG"] = caFile, filepath.Join(e.home, "own.kubeconfig")
	before := len(e.kas.Requests())
	r := e.sh(t, p, own, `kubectl gitlab-agent kubeconfig "$KUBE_CONTEXT" --ci --ca-file "$KAS_CA" --kubeconfig "$OWN_KUBECONFIG" --use-context && kubectl --kubeconfig "$OWN_KUBECONFIG" get deployment -n gitlab-agent-prod-eu -o name`)
	if r.code != 0 || !strings.Contains(r.log, "deployment.apps/prod-eu-gitlab-agent-v2") || len(e.kas.Requests()) == before {
		t.Fatalf("kubeconfig --ci with the job token alone: %+v", r)
	}

	// A job of a project the agent is not shared with: KAS's 403, and the fix.
	other := e.fake.AddProject("other/app")
	dev, _ := e.fake.AddMember(other, "other-dev", fakegitlab.Developer)
	otherToken := e.fake.AddJobToken(dev, other)
	foreign := filepath.Join(t.TempDir(), "KUBECONFIG")
	if err := os.WriteFile(foreign, bytes.ReplaceAll(e.injected, []byte(e.jobToken), []byte(otherToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := maps.Clone(job)
	refused["KUBECONFIG"], refused["CI_JOB_TOKEN"], refused["CI_PROJECT_PATH"], refused["CI_PROJECT_ID"] = foreign, otherToken, "other/app", itoa(other.ID)
	r = e.sh(t, p, refused, `kubectl gitlab-agent diff prod-eu --context "$KUBE_CONTEXT" --values agent/values.yaml`)
	lines := strings.Split(strings.TrimSpace(r.log), "\n")
	if r.code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[len(lines)-1], "error: ") ||
		!strings.Contains(lines[len(lines)-1], "agentId is not allowed: KAS refuses this CI job for the agent: the job's project (other/app) is not in the agent's ci_access; add it with 'kubectl gitlab-agent agent config set AGENT --project AGENT_PROJECT --ci-access-project other/app'") {
		t.Errorf("a job the agent is not shared with:\n%s", r.log)
	}
	if strings.Contains(r.log, otherToken) {
		t.Error("the refused job token was printed")
	}

	// Last, uninstall through the same context.
	r = e.sh(t, p, job, `kubectl gitlab-agent uninstall prod-eu --context "$KUBE_CONTEXT" --yes`)
	if r.code != 0 || !strings.Contains(r.log, `agent "prod-eu" uninstalled`) {
		t.Fatalf("uninstall: %+v", r)
	}
	if _, err := cs.AppsV1().Deployments("gitlab-agent-prod-eu").Get(context.Background(), "prod-eu-gitlab-agent-v2", metav1.GetOptions{}); err == nil {
		t.Error("the agent's Deployment is still there")
	}
}
