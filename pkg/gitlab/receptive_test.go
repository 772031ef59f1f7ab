package gitlab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const urlConfigsRoute = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/url_configurations"

// testCA is a self-signed CA certificate as PEM.
func testCA(t *testing.T) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestURLConfigurationLifecycle(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	ctx := context.Background()
	a, _, err := c.RegisterAgent(ctx, proj, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if list, err := c.ListURLConfigurations(ctx, proj, a); err != nil || len(list) != 0 {
		t.Fatalf("list before: %v %v", list, err)
	}
	ca := testCA(t)
	u, err := c.CreateURLConfiguration(ctx, proj, a, NewURLConfiguration{URL: "grpcs://edge.example.com:8182", CACert: ca, TLSHost: "edge.internal"})
	if err != nil {
		t.Fatal(err)
	}
	stored := f.fake.URLConfigurations(&f.fake.Agents(f.project)[0])
	if len(stored) != 1 || u.ID != stored[0].ID || u.AgentID != a.ID || u.URL != "grpcs://edge.example.com:8182" || u.TLSHost != "edge.internal" {
		t.Fatalf("created %+v, GitLab holds %+v", u, stored)
	}
	// GitLab's public key, as it gives it: base64 of the Ed25519 key.
	if key, err := base64.StdEncoding.DecodeString(u.PublicKey); err != nil || len(key) != ed25519.PublicKeySize || u.PublicKey != stored[0].PublicKey {
		t.Errorf("public key %q, GitLab's %q", u.PublicKey, stored[0].PublicKey)
	}
	// The CA went as GitLab's API decodes it (base64), and arrived as PEM.
	if stored[0].CACert != ca || u.CACert != ca {
		t.Errorf("CA stored %q, answered %q", stored[0].CACert, u.CACert)
	}

	// A developer sees it; the project may be named by its ID.
	list, err := f.client(t, f.dToken).ListURLConfigurations(ctx, ProjectRef{ID: f.project.ID}, a)
	if err != nil || len(list) != 1 || *list[0] != *u {
		t.Fatalf("list: %+v %v, want %+v", list, err, u)
	}

	// GitLab keeps one per agent.
	_, err = c.CreateURLConfiguration(ctx, proj, a, NewURLConfiguration{URL: "grpcs://other.example.com:8182"})
	if !IsClass(err, ClassConflict) || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "one URL configuration per agent") {
		t.Errorf("second create: %v", err)
	}
	if _, err := f.client(t, f.dToken).CreateURLConfiguration(ctx, proj, a, NewURLConfiguration{URL: "grpc://x:1"}); !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "Maintainer") {
		t.Errorf("a developer's create: %v", err)
	}

	if err := c.DeleteURLConfiguration(ctx, proj, a, u.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.URLConfigurations(&f.fake.Agents(f.project)[0])); n != 0 {
		t.Fatalf("%d URL configurations after delete", n)
	}
	if err := c.DeleteURLConfiguration(ctx, proj, a, u.ID); err != nil {
		t.Errorf("deleting one gone already: %v", err)
	}
	if n := f.fake.Calls(urlConfigsRoute); n != 3 {
		t.Errorf("%d creates sent, want 3", n)
	}
}

// A GitLab without receptive agents answers 404: one line that says what
// they need.
func TestURLConfigurationsNotThere(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	ctx := context.Background()
	a, _, err := c.RegisterAgent(ctx, proj, "edge")
	if err != nil {
		t.Fatal(err)
	}
	f.fake.SetReceptive(false)
	_, lerr := c.ListURLConfigurations(ctx, proj, a)
	_, cerr := c.CreateURLConfiguration(ctx, proj, a, NewURLConfiguration{URL: "grpcs://edge.example.com:8182"})
	for _, err := range []error{lerr, cerr} {
		if !IsClass(err, ClassNotFound) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no receptive agents: they need GitLab Ultimate 17.4 or later") {
			t.Errorf("without receptive agents: %v", err)
		}
	}
	if n := len(f.fake.URLConfigurations(&f.fake.Agents(f.project)[0])); n != 0 {
		t.Errorf("%d URL configurations made", n)
	}
}

// A create whose answer is lost is not sent again: the one GitLab made is
// found and returned.
func TestCreateURLConfigurationLostAnswer(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	ctx := context.Background()
	a, _, err := c.RegisterAgent(ctx, proj, "edge")
	if err != nil {
		t.Fatal(err)
	}
	f.fake.Inject(fakegitlab.Fault{Route: urlConfigsRoute, Nth: 1, Status: 502, AfterWork: true})
	u, err := c.CreateURLConfiguration(ctx, proj, a, NewURLConfiguration{URL: "grpcs://edge.example.com:8182"})
	stored := f.fake.URLConfigurations(&f.fake.Agents(f.project)[0])
	if err != nil || len(stored) != 1 || u.ID != stored[0].ID || u.PublicKey != stored[0].PublicKey {
		t.Fatalf("after a lost answer: %+v %v, GitLab holds %+v", u, err, stored)
	}
	if n := f.fake.Calls(urlConfigsRoute); n != 1 {
		t.Errorf("the create was sent %d times, want once", n)
	}
}
