package e2e

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
)

type doctorReport struct {
	Agent  string `json:"agent"`
	Checks []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Fix     string `json:"fix"`
	} `json:"checks"`
	Verdict string `json:"verdict"`
}

func (r doctorReport) check(id string) (string, string) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status, c.Message + " | " + c.Fix
		}
	}
	return "", ""
}

// TestDoctorOnTheTestCluster: an agent installed on the real control plane,
// dialling a KAS stand-in with a private CA, with user_access through KAS's
// proxy to the real kube-apiserver: doctor finds it healthy, every check
// passing; then an error in agentk's log (as kwok's kubelet serves it) makes
// it broken, with the fix.
func TestDoctorOnTheTestCluster(t *testing.T) {
	te := newTunnel(t)
	simulateAgentk(t, te.gitlabEnv)
	ep := fakekas.NewAgentEndpoint(fakekas.WebSocket, "/")
	t.Cleanup(ep.Close)
	te.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = ep.URL })
	dir := t.TempDir()
	values := writeFile(t, dir, "values.yaml", "config:\n  kasCaCert: |\n    "+strings.ReplaceAll(strings.TrimSpace(ep.CAPEM()), "\n", "\n    ")+"\n")
	if r := te.run(t, nil, kubectl, "gitlab-agent", "install", "tun", "--project", "infra/agents", "--kas-address", ep.URL, "-f", values); r.code != 0 {
		t.Fatalf("install: %+v", r)
	}
	t.Cleanup(func() {
		te.run(t, nil, kubectl, "gitlab-agent", "uninstall", "tun", "--project", "infra/agents", "--yes", "--revoke-tokens")
	})
	// A k8s_proxy credential at hand: the kubeconfig context used once.
	kc := filepath.Join(dir, "config")
	if r := te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kc, "--ca-file", te.caFile); r.code != 0 {
		t.Fatalf("kubeconfig: %+v", r)
	}
	host := strings.NewReplacer(".", "_", ":", "_").Replace(strings.TrimPrefix(te.fake.URL, "http://"))
	if r := te.run(t, nil, kubectl, "--kubeconfig", kc, "--context", host+"-infra_agents-tun", "get", "ns", "default"); r.code != 0 {
		t.Fatalf("through KAS: %+v", r)
	}
	seen := len(te.kas.Requests())

	doctor := func() (result, doctorReport, time.Duration) {
		t.Helper()
		start := time.Now()
		r := te.run(t, nil, kubectl, "gitlab-agent", "doctor", "tun", "--project", "infra/agents", "--ca-file", te.caFile, "-o", "json")
		took := time.Since(start)
		var rep doctorReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("doctor -o json: %v: %+v", err, r)
		}
		return r, rep, took
	}
	var times []time.Duration
	for i := 0; i < 5; i++ {
		r, rep, took := doctor()
		times = append(times, took)
		if r.code != 0 || rep.Verdict != "healthy" {
			t.Fatalf("doctor: exit %d, %s:\n%s%s", r.code, rep.Verdict, r.stdout, r.stderr)
		}
		for _, c := range rep.Checks {
			if c.Status != "pass" {
				t.Errorf("%s: %s %q (fix %q)", c.ID, c.Status, c.Message, c.Fix)
			}
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("healthy doctor through kubectl on the test cluster: median %s, max %s of %d runs", times[len(times)/2], times[len(times)-1], len(times))
	if len(te.kas.Requests()) <= seen {
		t.Error("the k8s-proxy check sent nothing through KAS")
	}

	// agentk logs that it does not trust KAS. It is connected all the
	// same, so that is a warning: degraded, exit 0.
	if err := cl.AppendLog(`{"level":"error","msg":"Error handling a connection","error":"tls: failed to verify certificate: x509: certificate signed by unknown authority"}`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Later readers of the shared log see this test's error no more.
		for i := 0; i < 210; i++ {
			_ = cl.AppendLog(`{"level":"info","msg":"doctor test done"}`)
		}
	})
	r, rep, _ := doctor()
	st, msg := rep.check("agent-logs")
	if r.code != 0 || rep.Verdict != "degraded" || st != "warn" || !strings.Contains(msg, "config.kasCaCert") {
		t.Errorf("an error in agentk's log: exit %d, %s, agent-logs %s %q", r.code, rep.Verdict, st, msg)
	}
	// The text form names the fix too.
	r = te.run(t, nil, kubectl, "gitlab-agent", "doctor", "tun", "--project", "infra/agents", "--ca-file", te.caFile)
	if r.code != 0 || !strings.Contains(r.stdout, "fix: give agentk KAS's CA") || !strings.HasSuffix(r.stdout, "agent \"tun\": degraded\n") {
		t.Errorf("text: exit %d\n%s", r.code, r.stdout)
	}
}
