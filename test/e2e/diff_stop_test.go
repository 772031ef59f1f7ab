package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// slowAPIStandIn serves the discovery of v1 ConfigMaps and Namespaces
// (unless discovery is false: then only /version answers); of the other
// requests it answers the first `answered` (404, as for objects that do not
// exist), then none: they hang until the client goes.
func slowAPIStandIn(t *testing.T, discovery bool, answered int) *apiStandIn {
	others := 0
	return newAPIStandIn(t, func(s *apiStandIn, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch path := r.URL.Path; {
		case path == "/version":
			fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
			return
		case !discovery:
		case path == "/api":
			fmt.Fprint(w, `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}`)
			return
		case path == "/api/v1":
			fmt.Fprint(w, `{"kind":"APIResourceList","groupVersion":"v1","resources":[`+
				`{"name":"configmaps","singularName":"configmap","namespaced":true,"kind":"ConfigMap","verbs":["get","list","patch"]},`+
				`{"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["get","list","patch"]}]}`)
			return
		case path == "/apis":
			fmt.Fprint(w, `{"kind":"APIGroupList","apiVersion":"v1","groups":[]}`)
			return
		}
		s.mu.Lock()
		others++
		hang := others > answered
		s.mu.Unlock()
		if hang {
			_, _ = io.Copy(io.Discard, r.Body) // then a client that goes ends r's context
			select {
			case <-r.Context().Done():
			case <-s.quit:
			}
			return
		}
		writeStatus(w, 404, "NotFound")
	})
}

// Issue 26, item 2: Ctrl-C during a diff did not stop it (25 more requests
// in 5 s: discovery, one per object, which no context reached). The first
// SIGINT (exit 130) or SIGTERM (143: GitLab CI cancelling a job, timeout)
// stops every request in flight and says how far the diff got, in one line.
// The stand-in answers discovery or not; then the first 40 requests for
// objects, and then none, so that the plugin waits with every request it
// may have in flight; not one more may arrive after the signal. Not
// parallel, as TestAttack05.
func TestDiffStopsOnSignal(t *testing.T) {
	manifests := configMapsFile(t, 1000, 3) // GETs, not LISTs
	for _, tc := range []struct {
		sig       syscall.Signal
		code      int
		discovery bool
	}{
		{syscall.SIGINT, 130, true},
		{syscall.SIGTERM, 143, true},
		{syscall.SIGINT, 130, false},
		{syscall.SIGTERM, 143, false},
	} {
		answered := 40
		if !tc.discovery {
			answered = 0
		}
		s := slowAPIStandIn(t, tc.discovery, answered)
		cmd := exec.Command(pluginBin(), "diff", "-f", manifests)
		cmd.Env = append(append([]string{}, env...), "KUBECONFIG="+s.kubeconfig(t))
		errOut := &syncBuffer{}
		cmd.Stderr = errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		// Wait until the plugin waits: no request for a while after the
		// answered ones.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n, last := s.count()
			if n > answered && time.Since(last) > 500*time.Millisecond {
				break
			}
			select {
			case <-done:
				t.Fatalf("%v: the diff ended before the signal: exit %d\n%s", tc.sig, cmd.ProcessState.ExitCode(), errOut.String())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: the diff did not get going: %d requests", tc.sig, n)
			}
		}
		before, _ := s.count()
		sent := time.Now()
		_ = cmd.Process.Signal(tc.sig)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%v: the diff did not end within 15s", tc.sig)
		}
		took := time.Since(sent)
		after, _ := s.count()
		lines := strings.Split(strings.TrimRight(errOut.String(), "\n"), "\n")
		last := lines[len(lines)-1]
		if code := cmd.ProcessState.ExitCode(); code != tc.code || len(lines) != 1 ||
			!strings.HasPrefix(last, "error: interrupted: ") || !strings.Contains(last, " of 1000 objects compared (") || !strings.HasSuffix(last, " not; nothing was changed") {
			t.Errorf("%v: exit %d, stderr:\n%s", tc.sig, code, errOut.String())
		}
		if after != before {
			s.mu.Lock()
			t.Errorf("%v: %d requests after the signal: %v", tc.sig, after-before, s.requests[before:])
			s.mu.Unlock()
		}
		t.Logf("%v after %d requests (discovery answered: %v): exit %d %s later: %s", tc.sig, before, tc.discovery, cmd.ProcessState.ExitCode(), took.Round(time.Millisecond), last)
	}
}

// Issue 26, item 5: with no kubeconfig, diff NAME printed Go's error
// (`Get "http://localhost:8080/apis/..."`) where diff -f printed the
// friendly one: both say it as every command does.
func TestDiffWithoutAKubeconfig(t *testing.T) {
	t.Parallel()
	if c, err := net.DialTimeout("tcp", "localhost:8080", time.Second); err == nil {
		c.Close()
		t.Skip("something answers on localhost:8080, where client-go goes without a kubeconfig")
	}
	home := t.TempDir() // no ~/.kube/config
	f := writeFile(t, home, "m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
	var first string
	for _, args := range [][]string{{"diff", "demo"}, {"diff", "-f", f}, {"diff", "demo", "--prune"}} {
		r := runIn(t, runSpec{env: []string{"KUBECONFIG=", "HOME=" + home}}, kubectl, append([]string{"gitlab-agent"}, args...)...)
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
			!strings.HasPrefix(r.stderr, "error: cannot reach the cluster at http://localhost:8080: ") || strings.Contains(r.stderr, `Get "`) {
			t.Errorf("%v: exit %d, %q, %q", args, r.code, r.stdout, r.stderr)
		}
		if first == "" {
			first = r.stderr
		} else if r.stderr != first {
			t.Errorf("%v says %q, diff demo %q", args, r.stderr, first)
		}
	}
}
