package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiStandIn is an apiserver stand-in for diff: it counts every request,
// and answers each with answer.
type apiStandIn struct {
	*httptest.Server
	// quit ends the requests it holds.
	quit     chan struct{}
	mu       sync.Mutex
	requests []string
	last     time.Time
}

func newAPIStandIn(t *testing.T, answer func(s *apiStandIn, w http.ResponseWriter, r *http.Request)) *apiStandIn {
	t.Helper()
	s := &apiStandIn{quit: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		s.last = time.Now()
		s.mu.Unlock()
		answer(s, w, r)
	}))
	t.Cleanup(func() {
		close(s.quit)
		s.Close()
	})
	return s
}

// count is how many requests arrived, and when the last did.
func (s *apiStandIn) count() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests), s.last
}

// kubeconfig writes a kubeconfig whose context "ci" reaches s as user
// "deployer".
func (s *apiStandIn) kubeconfig(t *testing.T) string {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: stand-in, cluster: {server: "`+s.URL+`"}}]
users: [{name: deployer, user: {token: expired}}]
contexts: [{name: ci, context: {cluster: stand-in, user: deployer}}]
current-context: ci
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

func writeStatus(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, strings.ToLower(reason), reason, code)
}

// configMapsFile writes n ConfigMaps, spread over namespaces of perNS each.
func configMapsFile(t *testing.T, n, perNS int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: ns-%d}\ndata: {a: b}\n", i, i/perNS)
	}
	return writeFile(t, t.TempDir(), "m.yaml", b.String())
}

// Issue 26, item 1: against a cluster that refuses the credentials, diff
// sent a throttled discovery request per object (a 20,000-object file was
// still running after 10 minutes) and printed one identical error each.
// Now the refusal of discovery ends the run with one line, exit 2. Not
// parallel: the time it took is reported (not asserted), and other tests'
// processes would blur it.
func TestDiffRefusedCredentialsEndAtOnce(t *testing.T) {
	manifests := configMapsFile(t, 1000, 1000)
	for _, tc := range []struct {
		code         int
		reason, want string
	}{
		{401, "Unauthorized", `does not accept the credentials of kubeconfig user "deployer" (401 Unauthorized): check that its token or client certificate is current`},
		{403, "Forbidden", `does not let kubeconfig user "deployer" discover its API (403 Forbidden): check what the cluster lets that user do`},
	} {
		s := newAPIStandIn(t, func(_ *apiStandIn, w http.ResponseWriter, _ *http.Request) { writeStatus(w, tc.code, tc.reason) })
		start := time.Now()
		r := runIn(t, runSpec{env: []string{"KUBECONFIG=" + s.kubeconfig(t)}}, pluginBin(), "diff", "-f", manifests)
		took := time.Since(start)
		n, _ := s.count()
		want := "error: the cluster at " + s.URL + " (context ci) " + tc.want
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("%d: exit %d, stdout %q, stderr %q; want exit 2 and one line %q...", tc.code, r.code, r.stdout, r.stderr, want)
		}
		// /version (Reachable), then discovery's first request.
		if n > 3 {
			t.Errorf("%d: %d requests: %v", tc.code, n, s.requests)
		}
		t.Logf("%d to everything, 1,000 objects: exit %d after %s, %d requests", tc.code, r.code, took.Round(time.Millisecond), n)
	}
}
