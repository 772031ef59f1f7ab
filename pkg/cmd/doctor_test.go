package cmd

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
)

// doctorWorld installs agent prod through the command, dialling a KAS
// stand-in whose CA agentk is given.
func doctorWorld(t *testing.T) (*inProcess, *fakekas.AgentEndpoint) {
	t.Helper()
	w := newInProcess(t)
	ep := fakekas.NewAgentEndpoint(fakekas.WebSocket, "/")
	t.Cleanup(ep.Close)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = ep.URL })
	values := filepath.Join(t.TempDir(), "values.yaml")
	ca := "config:\n  kasCaCert: |\n    " + strings.ReplaceAll(strings.TrimSpace(ep.CAPEM()), "\n", "\n    ") + "\n"
	if err := os.WriteFile(values, []byte(ca), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := w.run(t, "install", "prod", "--kas-address", ep.URL, "-f", values); code != 0 {
		t.Fatalf("install: exit %d: %s", code, errOut)
	}
	return w, ep
}

func TestDoctorCommand(t *testing.T) {
	w, ep := doctorWorld(t)
	code, out, errOut := w.run(t, "doctor", "prod")
	if code != 0 || !strings.HasSuffix(out, "agent \"prod\": healthy\n") {
		t.Fatalf("healthy: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range doctor.IDs() {
		if !strings.Contains(out, "  "+id+"  ") {
			t.Errorf("no line for %s:\n%s", id, out)
		}
	}
	if ep.Upgrades() != 1 {
		t.Errorf("%d WebSocket upgrades", ep.Upgrades())
	}

	// Without NAME: the agent running in the cluster.
	code, out, errOut = w.run(t, "doctor", "-o", "json")
	if code != 0 || !strings.Contains(out, `"agent": "prod"`) || !strings.Contains(errOut, `checking agent "prod"`) {
		t.Errorf("no NAME: exit %d\n%s%s", code, out, errOut)
	}

	// -o json is exactly the documented shape.
	code, out, errOut = w.run(t, "doctor", "prod", "-o", "json")
	var doc struct {
		Agent  string `json:"agent"`
		Checks []struct {
			ID, Status, Message, Fix string
		} `json:"checks"`
		Verdict string `json:"verdict"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || code != 0 || doc.Agent != "prod" || doc.Verdict != "healthy" || len(doc.Checks) != len(doctor.IDs()) {
		t.Fatalf("json: exit %d, %v: %s%s", code, err, out, errOut)
	}
	for _, c := range doc.Checks {
		switch c.Status {
		case "pass", "warn", "fail", "skip":
		default:
			t.Errorf("%s: status %q", c.ID, c.Status)
		}
	}

	// A broken agent: exit 1, the verdict says so, with a fix line.
	code, out, _ = w.run(t, "doctor", "other")
	if code != 1 || !strings.Contains(out, "agent \"other\": broken") || !strings.Contains(out, "fix: kubectl gitlab-agent install other") {
		t.Errorf("broken: exit %d\n%s", code, out)
	}
	code, out, _ = w.run(t, "doctor", "other", "-o", "json")
	if code != 1 || !strings.Contains(out, `"verdict": "broken"`) {
		t.Errorf("broken json: exit %d\n%s", code, out)
	}

	// No token, of GitLab or of the agent, is printed.
	tok, _ := os.ReadFile(w.tokenFile)
	for _, args := range [][]string{{"doctor", "prod"}, {"doctor", "prod", "-o", "yaml"}} {
		_, out, errOut := w.run(t, append(args, "--v=9")...)
		if strings.Contains(out+errOut, string(bytes.TrimSpace(tok))) {
			t.Errorf("%v printed the GitLab token", args)
		}
		for _, a := range w.gl.Agents(w.project) {
			for _, at := range w.gl.AgentTokens(&a) {
				if strings.Contains(out+errOut, at.Token) {
					t.Errorf("%v printed the agent token", args)
				}
			}
		}
	}
}

func TestDoctorUsageErrors(t *testing.T) {
	w := newInProcess(t)
	for _, args := range [][]string{
		{"doctor"},
		{"doctor", "a", "b"},
		{"doctor", "prod", "--timeout", "0s"},
		{"doctor", "prod", "--bogus"},
		{"doctor", "prod", "-o", "xml"},
		{"doctor", "Not_A_Name"},
	} {
		code, out, errOut := w.run(t, args...)
		if code != 2 || out != "" || strings.Count(errOut, "error:") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and one error line", args, code, out, errOut)
		}
	}
}

func TestStatusShowsDoctorsVerdict(t *testing.T) {
	w, ep := doctorWorld(t)
	code, out, errOut := w.run(t, "status", "prod")
	if code != 0 || strings.Contains(out, "Doctor") {
		t.Fatalf("healthy: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = w.run(t, "status", "-o", "json")
	if code != 0 || !strings.Contains(out, `"doctor": {`) || !strings.Contains(out, `"verdict": "healthy"`) {
		t.Errorf("json: exit %d\n%s", code, out)
	}
	// KAS goes away: status says so in one line and points at doctor.
	ep.Close()
	code, out, errOut = w.run(t, "status", "prod")
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Doctor") {
			line = l
		}
	}
	if code != 0 || !strings.Contains(line, "broken (failing kas-tls, kas-handshake") || !strings.HasSuffix(line, "run kubectl gitlab-agent doctor prod") {
		t.Errorf("KAS gone: exit %d, Doctor line %q\n%s%s", code, line, out, errOut)
	}
	if _, out, _ = w.run(t, "status", "prod", "--no-doctor"); strings.Contains(out, "Doctor") {
		t.Errorf("--no-doctor:\n%s", out)
	}
}

// TestStatusReadsTheTokenFileOnce: --gitlab-token-file may be a pipe or a
// one-shot secret; status builds two GitLab clients (its own and doctor's)
// and must read it once. The pipe here is written once: a second read
// blocks, and fails the test.
func TestStatusReadsTheTokenFileOnce(t *testing.T) {
	w, _ := doctorWorld(t)
	token, err := os.ReadFile(w.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "token-pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	go func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil { // blocks until a reader opens
			_, _ = f.Write(token)
			f.Close()
		}
	}()
	w.tokenFile = fifo
	type result struct {
		code        int
		out, errOut string
	}
	ran := make(chan result, 1)
	go func() {
		code, out, errOut := w.run(t, "status", "prod")
		ran <- result{code, out, errOut}
	}()
	select {
	case r := <-ran:
		if r.code != 0 || !strings.Contains(r.out, "prod") {
			t.Fatalf("status: exit %d\n%s%s", r.code, r.out, r.errOut)
		}
	case <-time.After(time.Minute):
		// Release the second reader (it then reads nothing), so that the
		// test ends.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		<-ran
		t.Fatal("status read --gitlab-token-file a second time (it waited on the pipe)")
	}
}

// TestDoctorPrintsRemoteTextInert: agentk's log lines and what KAS says
// reach the terminal without their escape sequences, and without a token.
func TestDoctorPrintsRemoteTextInert(t *testing.T) {
	w, _ := doctorWorld(t)
	w.cluster.Put(agentPod("prod-0"))
	w.cluster.SetLogs("gitlab-agent-prod", "prod-0", "gitlab-agent",
		"\x1b]0;owned\x07\x1b[2J x509: certificate signed by unknown authority for glagent-0123456789abcdefghij\n")
	code, out, _ := w.run(t, "doctor", "prod")
	// agentk is connected, so what it logged is a warning.
	if code != 0 || !strings.Contains(out, "agent-logs") || !strings.Contains(out, "config.kasCaCert") || !strings.Contains(out, "degraded") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "glagent-0123456789abcdefghij") {
		t.Errorf("remote text reached the terminal as sent:\n%q", out)
	}

	// A hostile KAS: escapes in its status line and its redirect.
	kas := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(rw).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		status := "418 \x1b]0;owned\x07teapot"
		if r.URL.Path == "/redirect" {
			// Go's client takes this Location (no control bytes), so it
			// reaches doctor's message: the bidi override must not.
			status = "302 Found\r\nLocation: /\u202egpj.exe"
		}
		_, _ = buf.WriteString("HTTP/1.1 " + status + "\r\nContent-Length: 0\r\n\r\n")
		_ = buf.Flush()
	}))
	defer kas.Close()
	kas.Config.ErrorLog = log.New(io.Discard, "", 0)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kas.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/redirect"} {
		addr := "wss://" + kas.Listener.Addr().String() + path
		if code, _, errOut := w.runBare(t, "upgrade", "prod", "--kas-address", addr, "--set-file", "config.kasCaCert="+ca); code != 0 {
			t.Fatalf("upgrade: %s", errOut)
		}
		code, out, _ := w.run(t, "doctor", "prod")
		if code != 1 || !strings.Contains(out, "kas-handshake") || strings.ContainsAny(out, "\x1b\x07\u202e") {
			t.Errorf("KAS answering %s: exit %d\n%q", path, code, out)
		}
		if path == "/redirect" && !strings.Contains(out, `redirects the WebSocket (302) to /\u202egpj.exe`) {
			t.Errorf("the redirect is not shown, escaped:\n%s", out)
		}
	}
}

// agentPod is a running pod of agent prod's Deployment.
func agentPod(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "gitlab-agent-prod",
			"labels": map[string]any{"app.kubernetes.io/name": "gitlab-agent", "app.kubernetes.io/instance": "prod"}},
		"status": map[string]any{"phase": "Running"},
	}}
}

// realDoctorCluster is fakeFactory with the real Factory's cluster for
// doctor, which reads the kubeconfig as kubectl does.
type realDoctorCluster struct{ fakeFactory }

func (realDoctorCluster) Doctor(g genericclioptions.RESTClientGetter) (doctor.Cluster, error) {
	return DefaultFactory().Doctor(g)
}

// TestDoctorWithoutAKubeconfig: with no kubeconfig the cluster checks skip,
// saying why (docs/doctor.md), instead of failing on localhost:8080.
func TestDoctorWithoutAKubeconfig(t *testing.T) {
	w, _ := doctorWorld(t)
	// client-go read $HOME once, at start: KUBECONFIG names the files.
	none := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	t.Setenv("KUBECONFIG", none)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	asked := w.cluster.Count("Reachable")
	var out, errOut bytes.Buffer
	args := []string{"doctor", "prod", "-o", "json", "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--project", "infra/agents"}
	Execute(realDoctorCluster{fakeFactory{cluster: w.cluster}}, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	var r doctor.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("doctor -o json: %v: %q %s", err, out.String(), errOut.String())
	}
	for _, c := range r.Checks {
		if c.ID != "cluster-reachable" && c.ID != "agent-pods" && c.ID != "agent-logs" {
			continue
		}
		if c.Status != doctor.Skip || !strings.Contains(c.Message, "no kubeconfig") || !strings.Contains(c.Message, none) {
			t.Errorf("%s without a kubeconfig: %s %q; want a skip that says why", c.ID, c.Status, c.Message)
		}
	}
	if w.cluster.Count("Reachable") != asked {
		t.Error("the cluster was asked")
	}
}
