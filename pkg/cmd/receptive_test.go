package cmd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const (
	edgeURL           = "grpcs://edge.example.com:8182"
	urlConfigsRoute   = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations"
	urlConfigDelRoute = "DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations/{url_configuration_id}"
)

// agentNamed is the fake's agent name, which must exist.
func (w *inProcess) agentNamed(t *testing.T, name string) *fakegitlab.Agent {
	t.Helper()
	for _, a := range w.gl.Agents(w.project) {
		if a.Name == name {
			return &a
		}
	}
	t.Fatalf("no agent %q", name)
	return nil
}

// caFile writes a self-signed CA certificate and returns its path and PEM.
func caFile(t *testing.T) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, []byte(ca), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ca
}

func TestInstallReceptiveInProcess(t *testing.T) {
	w := newInProcess(t)
	ca, pemCA := caFile(t)
	args := []string{"install", "edge", "--receptive-url", edgeURL, "--receptive-ca-file", ca, "--receptive-tls-host", "edge.internal"}
	code, out, errOut := w.run(t, args...)
	ucs := w.gl.URLConfigurations(w.agentNamed(t, "edge"))
	if code != 0 || len(ucs) != 1 {
		t.Fatalf("install: exit %d, %d URL configurations: %s", code, len(ucs), errOut)
	}
	uc := ucs[0]
	if uc.URL != edgeURL || uc.CACert != pemCA || uc.TLSHost != "edge.internal" {
		t.Errorf("URL configuration %+v", uc)
	}
	want := `agent "edge" is installed in namespace gitlab-agent-edge and connected
it is receptive: KAS dials it at ` + edgeURL + ` (URL configuration ` + strconv.FormatInt(uc.ID, 10) + ")\n"
	if out != want || !strings.Contains(errOut, "created URL configuration") {
		t.Errorf("install printed %q, want %q; stderr:\n%s", out, want, errOut)
	}
	s, _ := w.cluster.GetSecret(context.Background(), "gitlab-agent-edge", "edge-gitlab-agent-token")
	if s == nil || string(s.Data["api-jwt"]) != uc.PublicKey {
		t.Fatalf("the Secret's api-jwt is not GitLab's public key %q: %v", uc.PublicKey, s)
	}

	// Again: nothing changes.
	applied := len(w.cluster.Applied())
	code, out, errOut = w.run(t, args...)
	if code != 0 || !strings.Contains(out, "up to date") || w.gl.Calls(urlConfigsRoute) != 1 || len(w.cluster.Applied()) != applied {
		t.Errorf("re-run: exit %d, %q, %s", code, out, errOut)
	}

	// diff NAME and upgrade see it as it runs: receptive, with GitLab's key.
	if code, out, errOut := w.runBare(t, "diff", "edge"); code != 0 {
		t.Errorf("diff edge: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := w.runBare(t, "upgrade", "edge"); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("upgrade edge: exit %d\n%s%s", code, out, errOut)
	}

	// status says where KAS dials it.
	code, out, errOut = w.run(t, "status", "edge", "--no-doctor")
	if code != 0 || !strings.Contains(out, "Receptive  KAS dials the agent at "+edgeURL) {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = w.run(t, "status", "edge", "--no-doctor", "-o", "json")
	var doc statusResult
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.Agents[0].Receptive == nil || doc.Agents[0].Receptive.URL != edgeURL {
		t.Errorf("status -o json: exit %d\n%s", code, out)
	}

	// uninstall --delete-agent deletes it with the agent.
	code, out, errOut = w.run(t, "uninstall", "edge", "--delete-agent", "--yes")
	if code != 0 || !strings.Contains(out, "objects deleted, its URL configuration deleted, its registration deleted\n") {
		t.Errorf("uninstall: exit %d, %q, %s", code, out, errOut)
	}
	if n := w.gl.Calls(urlConfigDelRoute); n != 1 {
		t.Errorf("%d deletes of the URL configuration, want 1", n)
	}
}

// A GitLab without receptive agents: one error line that says so.
func TestInstallReceptiveNotThereInProcess(t *testing.T) {
	w := newInProcess(t)
	w.gl.SetReceptive(false)
	code, _, errOut := w.run(t, "install", "edge", "--receptive-url", edgeURL)
	if code != 1 || strings.Count(errOut, "error:") != 1 || !strings.Contains(errOut, "no receptive agents: they need GitLab Ultimate 17.4 or later") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
	if len(w.cluster.Applied()) != 0 || w.gl.Calls("POST /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens") != 0 {
		t.Error("something was applied or a token made")
	}
}

// An agent receptive elsewhere: the error names the flag that replaces it.
func TestInstallReceptiveOtherURLInProcess(t *testing.T) {
	w := newInProcess(t)
	old := w.gl.AddURLConfiguration(w.gl.AddAgent(w.project, "edge", w.user), "grpcs://old.example.com:8182")
	code, _, errOut := w.run(t, "install", "edge", "--receptive-url", edgeURL)
	if code != 1 || strings.Count(errOut, "error:") != 1 || !strings.Contains(errOut, "or pass --receptive-replace to replace it") || !strings.Contains(errOut, "grpcs://old.example.com:8182") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	code, _, errOut = w.run(t, "install", "edge", "--receptive-url", edgeURL, "--receptive-replace")
	ucs := w.gl.URLConfigurations(w.agentNamed(t, "edge"))
	if code != 0 || len(ucs) != 1 || ucs[0].URL != edgeURL || ucs[0].ID == old.ID {
		t.Errorf("with --receptive-replace: exit %d, %+v\n%s", code, ucs, errOut)
	}
}

func TestReceptiveCAFileMustBePEM(t *testing.T) {
	w := newInProcess(t)
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := w.run(t, "install", "edge", "--receptive-url", edgeURL, "--receptive-ca-file", bad)
	if code != 1 || !strings.Contains(errOut, "not PEM certificates") || len(w.gl.Requests()) != 0 {
		t.Errorf("exit %d, %d requests:\n%s", code, len(w.gl.Requests()), errOut)
	}
}
