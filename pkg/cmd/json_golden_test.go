package cmd

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"
)

// jsonCommand is a command whose -o json is a contract (docs/output.md):
// its output is kept in testdata/json/<name>.json.
type jsonCommand struct {
	name string
	args []string
	// bare: without the GitLab flags (the command takes none).
	bare bool
	// result is the type the command prints, whose lists must print as [].
	result reflect.Type
}

// TestJSONOutput runs every command that prints a result, in-process against
// the fake GitLab and the in-memory cluster, and compares its -o json with
// testdata/json (go test -run TestJSONOutput -update rewrites them: a field
// renamed or gone is a broken contract, so review the change and
// docs/output.md). What differs between runs (the fake's address, times,
// durations, the Go version, secrets, temporary paths) is replaced first.
// doctor's is TestJSONOutputDoctor's; diff needs a real cluster, its golden
// file is TestDiffJSONGolden's.
func TestJSONOutput(t *testing.T) {
	w := newInProcess(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	kubeconfig := filepath.Join(home, "kubeconfig")
	// One cached token, with fixed times: token-cache list shows it and
	// token-cache clear removes it (without --revoke: no request).
	cache, err := tunnel.DefaultCache()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := cache.Store(tunnel.Key("https://gitlab.example.com", "a credential"), &tunnel.CachedPAT{
		GitLabURL: "https://gitlab.example.com", ID: 42, Name: "kubectl-gitlab-agent-k8s-proxy", Token: "glpat-secret",
		ExpiresAt: at, CreatedAt: at.AddDate(0, 0, -30),
	}); err != nil {
		t.Fatal(err)
	}
	steps := []jsonCommand{
		{"version", []string{"version"}, true, reflect.TypeFor[versionResult]()},
		{"render", []string{"render", "demo"}, true, nil},
		{"install-dry-run", []string{"install", "prod", "--dry-run"}, false, reflect.TypeFor[installResult]()},
		{"install", []string{"install", "prod"}, false, reflect.TypeFor[installResult]()},
		{"upgrade", []string{"upgrade", "prod", "--set", "replicas=3"}, true, reflect.TypeFor[upgradeResult]()},
		{"upgrade-dry-run", []string{"upgrade", "prod", "--dry-run", "--set", "replicas=1"}, true, reflect.TypeFor[upgradeResult]()},
		{"agent-register", []string{"agent", "register", "staging"}, false, reflect.TypeFor[agentResult]()},
		{"agent-list", []string{"agent", "list"}, false, reflect.TypeFor[agentList]()},
		{"agent-get", []string{"agent", "get", "prod"}, false, reflect.TypeFor[agentResult]()},
		{"agent-config-show", []string{"agent", "config", "show", "prod"}, false, reflect.TypeFor[configFile]()},
		{"agent-config-set-dry-run", []string{"agent", "config", "set", "prod", "--ci-access-project", "apps/web", "--dry-run"}, false, reflect.TypeFor[configSetDocument]()},
		{"agent-config-set", []string{"agent", "config", "set", "prod", "--ci-access-project", "apps/web"}, false, reflect.TypeFor[configSetDocument]()},
		{"token-create", []string{"token", "create", "staging", "--name", "ci", "--description", "for CI", "--show-token"}, false, reflect.TypeFor[tokenCreated]()},
		{"token-list", []string{"token", "list", "prod"}, false, reflect.TypeFor[tokenList]()},
		{"token-rotate-dry-run", []string{"token", "rotate", "prod", "--dry-run"}, false, reflect.TypeFor[rotateResult]()},
		{"token-rotate", []string{"token", "rotate", "prod"}, false, reflect.TypeFor[rotateResult]()},
		{"status", []string{"status", "prod", "--no-doctor"}, false, reflect.TypeFor[statusResult]()},
		{"kubeconfig", []string{"kubeconfig", "prod", "--kubeconfig", kubeconfig, "--kas-proxy-url", "https://kas.example.com/k8s-proxy"}, false, reflect.TypeFor[kubeconfigDocument]()},
		{"token-cache-list", []string{"token-cache", "list"}, true, reflect.TypeFor[cachedTokenList]()},
		{"token-cache-clear", []string{"token-cache", "clear"}, true, reflect.TypeFor[cacheCleared]()},
		{"uninstall-dry-run", []string{"uninstall", "prod", "--dry-run=server", "--revoke-tokens"}, false, reflect.TypeFor[uninstallResult]()},
		{"uninstall", []string{"uninstall", "prod", "--yes", "--revoke-tokens"}, false, reflect.TypeFor[uninstallResult]()},
		{"agent-delete", []string{"agent", "delete", "prod", "--yes"}, false, reflect.TypeFor[agentDeleted]()},
		// A receptive agent: its URL configuration, with a key GitLab made.
		{"install-receptive", []string{"install", "edge", "--receptive-url", "grpcs://edge.example.com:8182", "--receptive-tls-host", "edge.internal"}, false, reflect.TypeFor[installResult]()},
		{"status-receptive", []string{"status", "edge", "--no-doctor"}, false, reflect.TypeFor[statusResult]()},
		{"uninstall-delete-agent-dry-run", []string{"uninstall", "edge", "--delete-agent", "--dry-run"}, false, reflect.TypeFor[uninstallResult]()},
		{"uninstall-delete-agent", []string{"uninstall", "edge", "--yes", "--delete-agent"}, false, reflect.TypeFor[uninstallResult]()},
	}
	// A token made at random, masked or as a checksum, in a rotation's plan.
	// GitLab's public key for a receptive agent, made at random.
	checksum, masked := regexp.MustCompile(`"[0-9a-f]{64}"`), regexp.MustCompile(`sha256:[0-9a-f]{10}`)
	publicKey := regexp.MustCompile(`("publicKey": )"[A-Za-z0-9+/]{43}="`)
	random := func(s string) string {
		s = publicKey.ReplaceAllString(s, `${1}"<public key>"`)
		return masked.ReplaceAllString(checksum.ReplaceAllString(s, `"<sha256>"`), "sha256:<hash>")
	}
	for _, c := range steps {
		out := c.runJSON(t, w, random)
		if c.name == "token-create" {
			// token revoke of the token just created, the ID as printed.
			var doc tokenCreated
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			revoke := jsonCommand{"token-revoke", []string{"token", "revoke", "staging", strconv.FormatInt(doc.Token.ID, 10)}, false, reflect.TypeFor[tokenRevoked]()}
			revoke.runJSON(t, w)
		}
	}
}

// run runs c with -o format (json or yaml), checks the exit code and that
// the document's lists are lists, and returns the output.
func (c jsonCommand) run(t *testing.T, w *inProcess, format string) string {
	t.Helper()
	run := w.run
	if c.bare {
		run = w.runBare
	}
	code, out, errOut := run(t, append(c.args, "-o", format)...)
	if code != 0 {
		t.Fatalf("%s -o %s: exit %d: %s", c.name, format, code, errOut)
	}
	js := []byte(out)
	if format == "yaml" {
		var err error
		if js, err = yaml.YAMLToJSON(js); err != nil {
			t.Fatalf("%s -o yaml: not YAML: %v\n%s", c.name, err, out)
		}
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("%s -o %s: not JSON: %v\n%s", c.name, format, err, out)
	}
	if c.result != nil {
		for _, p := range nullLists(c.result, doc, "") {
			t.Errorf("%s -o %s: %s is null, not a list", c.name, format, p)
		}
	}
	return out
}

// runJSON runs c with -o json and compares the output with its golden
// file (edit, when given, makes more of it stable); it returns the output
// as printed.
func (c jsonCommand) runJSON(t *testing.T, w *inProcess, edit ...func(string) string) string {
	t.Helper()
	out := c.run(t, w, "json")
	stable := stableJSON(out, w.gl.URL)
	for _, e := range edit {
		stable = e(stable)
	}
	golden.Compare(t, filepath.Join("testdata", "json", c.name+".json"), []byte(stable))
	return out
}

var (
	jsonTime     = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)
	jsonDuration = regexp.MustCompile(`("duration": )\d+`)
	jsonVarying  = regexp.MustCompile(`("(goVersion|platform|value)": )"[^"]*"`)
	jsonTempDir  = regexp.MustCompile(`"/[^"]*/kubeconfig"`)
)

// stableJSON is a command's -o json with what differs from run to run
// replaced: stable's, then times, durations, the Go version and platform,
// a token's value, the temporary kubeconfig's path, the fake's address in
// kubeconfig's entry names.
func stableJSON(out, gitlabURL string) string {
	out = stable(out, gitlabURL)
	if u, err := url.Parse(gitlabURL); err == nil {
		out = strings.ReplaceAll(out, strings.NewReplacer(".", "_", ":", "_").Replace(u.Host), "gitlab_test")
	}
	out = jsonTime.ReplaceAllString(out, `"2006-01-02T15:04:05Z"`)
	out = jsonDuration.ReplaceAllString(out, "${1}0")
	out = jsonVarying.ReplaceAllString(out, `${1}"<varies>"`)
	return jsonTempDir.ReplaceAllString(out, `"/tmp/kubeconfig"`)
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// nullLists lists the paths in doc, the decoded -o json of a value of type
// t, where a list field is null: every list prints as [] (jq's '.x[]' fails
// on null). Types with their own MarshalJSON (install.Plan, time.Time) are
// not looked into: their tests check them.
func nullLists(t reflect.Type, doc any, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) || doc == nil && t.Kind() != reflect.Slice {
		return nil
	}
	var out []string
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // bytes: a base64 string
			return nil
		}
		if doc == nil {
			return []string{path}
		}
		for i, e := range doc.([]any) {
			out = append(out, nullLists(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		for k, e := range doc.(map[string]any) {
			out = append(out, nullLists(t.Elem(), e, path+"."+k)...)
		}
	case reflect.Struct:
		m := doc.(map[string]any)
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
			case f.Anonymous && name == "": // its fields are the document's
				out = append(out, nullLists(f.Type, doc, path)...)
			case !f.IsExported():
			default:
				if name == "" {
					name = f.Name
				}
				if v, ok := m[name]; ok {
					out = append(out, nullLists(f.Type, v, path+"."+name)...)
				}
			}
		}
	}
	return out
}

// TestNullLists: the checker finds a null list, nested or embedded.
func TestNullLists(t *testing.T) {
	type inner struct {
		Names []string `json:"names"`
	}
	type outer struct {
		inner
		Items []inner `json:"items"`
		Data  []byte  `json:"data"`
		Maybe *inner  `json:"maybe"`
	}
	var doc any
	if err := json.Unmarshal([]byte(`{"names":null,"items":[{"names":[]},{"names":null}],"data":null,"maybe":null}`), &doc); err != nil {
		t.Fatal(err)
	}
	got := nullLists(reflect.TypeFor[outer](), doc, "")
	if want := []string{".names", ".items[1].names"}; !reflect.DeepEqual(got, want) {
		t.Errorf("nullLists = %v, want %v", got, want)
	}
}

// TestJSONOutputDoctor: doctor's -o json, for a healthy agent that dials
// a KAS stand-in (its address replaced, and how long ago agentk connected).
func TestJSONOutputDoctor(t *testing.T) {
	w, ep := doctorWorld(t)
	u, err := url.Parse(ep.URL)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(out string) string {
		return connectedAgo.ReplaceAllString(strings.ReplaceAll(out, u.Host, "kas.test:443"), "connected 5s ago")
	}
	for _, c := range []jsonCommand{
		{"doctor", []string{"doctor", "prod"}, false, reflect.TypeFor[doctorResult]()},
		// status with doctor's verdict
		{"status-doctor", []string{"status", "prod"}, false, reflect.TypeFor[statusResult]()},
	} {
		c.runJSON(t, w, edit)
	}
}

var connectedAgo = regexp.MustCompile(`connected \d+s ago`)

// TestJSONOutputBootstrap: bootstrap's dry run, on a cluster with Flux's
// CRDs (no controller runs in-process: a real bootstrap waits for Flux;
// test/e2e runs it against Flux's controllers).
func TestJSONOutputBootstrap(t *testing.T) {
	w := newInProcess(t)
	w.cluster.AddKind("source.toolkit.fluxcd.io/v1", "GitRepository", "gitrepositories", true, true)
	w.cluster.AddKind("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations", true, true)
	for _, name := range []string{"gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"} {
		w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"versions": []any{map[string]any{"name": "v1", "served": true}}},
		}})
	}
	w.gl.SetFile(w.project, "main", "README.md", []byte("# agents\n"))
	c := jsonCommand{"bootstrap-dry-run", []string{"bootstrap", "prod", "--dry-run"}, false, reflect.TypeFor[bootstrapResult]()}
	out := c.runJSON(t, w)
	if !strings.Contains(out, `"path": "clusters/prod/gitlab-agent/kustomization.yaml"`) {
		t.Errorf("the dry run's files:\n%s", out)
	}
}
