package cmd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// run calls Main as the binary would and returns exit code, stdout, stderr.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func TestRenderCommand(t *testing.T) {
	code, out, errOut := run(t, "", "render", "demo")
	// Without a token, one line says which Secret must exist (issue 26).
	if code != 0 || errOut != "note: no token given: the objects mount Secret gitlab-agent-demo/demo-gitlab-agent-token (key token), which must exist before they are applied; --token-file FILE embeds one, install makes one\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"kind: Namespace\nmetadata:", "name: gitlab-agent-demo\n", "name: demo-gitlab-agent-v2\n", "--kas-address=wss://kas.gitlab.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "kind: Secret") {
		t.Error("a Secret was rendered without a token")
	}
}

// TestRenderWarnsOfAKASAddressAgentkCannotUse: a KAS address without
// wss:// or grpcs:// is rendered as given, with one warning line.
func TestRenderWarnsOfAKASAddressAgentkCannotUse(t *testing.T) {
	for addr, want := range map[string]string{
		"kas.example.com":       `warning: the KAS address "kas.example.com" is not a URL`,
		"ws://kas.example.com":  `warning: the KAS address "ws://kas.example.com" is not encrypted (ws://)`,
		"wss://kas.example.com": "",
	} {
		code, out, errOut := run(t, "", "render", "demo", "--kas-address", addr, "--secret-name", "mine")
		if code != 0 || !strings.Contains(out, "--kas-address="+addr) {
			t.Errorf("%s: exit %d, %s", addr, code, errOut)
		}
		if (want == "" && errOut != "") || (want != "" && (!strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1)) {
			t.Errorf("%s: stderr %q, want one line %q", addr, errOut, want)
		}
	}
}

func TestRenderFlags(t *testing.T) {
	code, out, errOut := run(t, "", "render", "demo", "-n", "agents", "--kas-address", "wss://gitlab.example.com/-/kubernetes-agent/",
		"--agent-version", "17.2.0", "--replicas", "3", "--secret-name", "my-token", "--create-namespace=false", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("-o json is not JSON: %v", err)
	}
	if list.Kind != "List" || len(list.Items) == 0 || list.Items[0]["kind"] == "Namespace" {
		t.Fatalf("unexpected list: kind %q, %d items", list.Kind, len(list.Items))
	}
	for _, want := range []string{`"namespace": "agents"`, `"replicas": 3`, `agentk:v17.2.0"`, `"secretName": "my-token"`,
		`"--kas-address=wss://gitlab.example.com/-/kubernetes-agent/"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

func TestRenderTokenFromStdin(t *testing.T) {
	const token = "glagent-fake-stdin-token-000111"
	code, out, errOut := run(t, token+"\n", "render", "demo", "--token-file", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(token))) {
		t.Error("the token Secret is missing")
	}
	if strings.Contains(out, token) || strings.Contains(errOut, token) {
		t.Error("the token appears in clear text")
	}
	if lines := strings.Count(errOut, "\n"); lines != 1 || !strings.HasPrefix(errOut, "warning: the output holds credentials in Secret gitlab-agent-demo/demo-gitlab-agent-token") {
		t.Errorf("want one warning line, got %q", errOut)
	}
}

// TestRenderErrors: one clear line on stderr, exit 1, nothing on stdout.
func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(bad, []byte("replicas: two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("config:\n  tokn: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty-token")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"render", "demo", "--bogus"}, "error: unknown flag: --bogus (see 'kubectl gitlab-agent render --help')"},
		{[]string{"render"}, "error: kubectl gitlab-agent render needs NAME, got 0 argument(s)"},
		{[]string{"render", "Prod_EU"}, `error: invalid agent name "Prod_EU": use at most 63 lowercase letters`},
		{[]string{"render", "demo", "-f", filepath.Join(dir, "missing.yaml")}, "error: reading values file: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"},
		{[]string{"render", "demo", "-f", bad}, `error: ` + bad + `: replicas: want an integer, got "two"`},
		{[]string{"render", "demo", "-f", unknown}, `error: ` + unknown + `: config.tokn: unknown key (did you mean "token"?)`},
		{[]string{"render", "demo", "--set", "replicas"}, `error: --set replicas: want key=value`},
		{[]string{"render", "demo", "--token-file", empty}, "error: the token in " + empty + " is empty"},
		{[]string{"render", "demo", "-o", "table"}, `error: unknown output format "table": use one of yaml, json`},
		{[]string{"render", "demo", "--replicas", "x"}, `error: invalid argument "x" for "--replicas" flag`},
		{[]string{"render", "demo", "--kas-address", ""}, "error: no KAS address"},
		{[]string{"render", "demo", "--replicas", "-1"}, "error: --replicas must be 0 or more"},
		{[]string{"nosuch"}, `error: unknown command "nosuch" for "kubectl gitlab-agent"`},
		{[]string{"render", "demo", "--set-file", "config.kasCaCert"}, `error: --set-file: "config.kasCaCert": want key=FILE`},
		{[]string{"render", "demo", "--set-file", "config.kasCaCert=" + filepath.Join(dir, "missing.pem")}, "error: reading --set-file: open " + filepath.Join(dir, "missing.pem")},
		{[]string{"render", "demo", "--set-file", "config.kasCa=" + bad}, "error: --set-file: config.kasCa: unknown key; gitlab-agent chart 2.15.0, the version followed, has no such key"},
		{[]string{"render", "demo", "-f", "-", "--set-file", "config.kasCaCert=-"}, "error: -f - and --set-file - both read stdin: give one of them a file"},
		{[]string{"render", "demo", "--token-file", "-", "-f", "-"}, "error: --token-file - and -f - both read stdin"},
	}
	for _, tt := range tests {
		code, out, errOut := run(t, "", tt.args...)
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, tt.want) {
			if len(out) > 80 {
				out = out[:80] + "..."
			}
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1, no stdout, stderr starting %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestRenderSetFile(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(ca, []byte(pem), 0o644); err != nil {
		t.Fatal(err)
	}
	// As Helm: the file's content, verbatim; --set-file wins over --set.
	code, out, errOut := run(t, "", "render", "demo", "--set", "config.kasCaCert=x", "--set-file", "config.kasCaCert="+ca, "-o", "json")
	if code != 0 || !strings.Contains(out, `"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"`) || !strings.Contains(out, "--kas-ca-cert-file=") {
		t.Errorf("exit %d, %s\n%s", code, errOut, out)
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, _ := run(t, "", "version", "-o", "json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || v["platform"] == "" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	code, out, _ = run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "kubectl-gitlab-agent v") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestCompletionCommand(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := run(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "kubectl-gitlab_agent") {
			t.Errorf("%s: exit %d, stderr %q", shell, code, errOut)
		}
	}
	if code, _, _ := run(t, "", "completion", "tcsh"); code != 1 {
		t.Errorf("completion tcsh: exit %d, want 1", code)
	}
}
