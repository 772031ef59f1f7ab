package tunnel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/capture"
)

func TestCheckPath(t *testing.T) {
	ok := []string{"/api/v1/namespaces/default/pods", "/apis/apps/v1/deployments", "/version", "/api/v1/namespaces/a.b/configmaps/x..y", "/openapi/v3/apis/apps/v1", "/"}
	for _, p := range ok {
		u, _ := url.Parse(p)
		if err := checkPath(u); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	bad := []string{"/../api/v4/user", "/api/%2e%2e/%2e%2e/x", "/api/..%2f..%2fx", "/api/%252e%252e/x", "/api/..;/x", "/api/.", "/a\\..\\b", "/a%5c..%5cb", "/a%00", "/a/%25252e%25252e/b/%25252e%25252e"}
	for _, p := range bad {
		u, err := url.Parse(p)
		if err != nil {
			continue
		}
		if err := checkPath(u); err == nil {
			t.Errorf("%s was let through", p)
		}
	}
}

// upstream is a stand-in for KAS that records what it saw.
func upstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func serve(t *testing.T, o ProxyOptions) string {
	t.Helper()
	p, err := NewProxy(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

func fixed(tok string) func(context.Context, bool) (string, error) {
	return func(context.Context, bool) (string, error) { return tok, nil }
}

func TestProxyRefusesBrowsersAndForeignPaths(t *testing.T) {
	var hits atomic.Int32
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok" || !strings.HasPrefix(r.URL.Path, "/k8s-proxy/") {
			t.Errorf("upstream got %s %q", r.URL.Path, r.Header.Get("Authorization"))
		}
	})
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: fixed("tok"), AcceptHosts: DefaultAcceptHosts})
	do := func(path string, h map[string]string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		h    map[string]string
		want int
	}{
		{nil, 200},
		// The proxy's own origin, from a WebSocket client that is not a
		// browser (Python's sends it); from a browser (Sec-Fetch-*), not: a
		// page the cluster serves through a Service proxy path is on it (a
		// link opened from mail or chat).
		{map[string]string{"Origin": "http://" + addr}, 200},
		{map[string]string{"Origin": "http://" + addr, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "websocket"}, 403},
		{map[string]string{"Sec-Fetch-Site": "same-origin"}, 403},
		{map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 403},
		{map[string]string{"Sec-Fetch-Mode": "cors"}, 403},
		{map[string]string{"Sec-Fetch-Dest": "iframe"}, 403},
		{map[string]string{"Origin": "https://evil.example"}, 403},
		{map[string]string{"Origin": "null"}, 403},
		{map[string]string{"Origin": "http://" + addr + ".evil.example"}, 403},
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
	} {
		if got := do("/api/v1/pods", c.h); got != c.want {
			t.Errorf("%v: %d, want %d", c.h, got, c.want)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want the 2 allowed", n)
	}
}

// A proxy that answers other names (--accept-hosts): a page rebound to one
// of them sends its own Origin and, over plain http to a name that is not
// loopback, no Sec-Fetch-*; it is refused. On loopback the own Origin
// passes (Python's websocket-client sends it).
func TestProxyOwnOriginOnlyOnLoopback(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {})
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: fixed("tok"), AcceptHosts: ".*"})
	_, port, _ := net.SplitHostPort(addr)
	for host, want := range map[string]int{
		"rebind.attacker.example:" + port: http.StatusForbidden,
		"localhost:" + port:               http.StatusOK,
		"127.0.0.1:" + port:               http.StatusOK,
	} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/pods", nil)
		req.Host = host
		req.Header.Set("Origin", "http://"+host)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host and Origin %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// A page the cluster serves through a Service proxy path, opened by a
// browser that sends no Sec-Fetch-* header: it must not run as the proxy's
// own page, where its script would call the API with the credential.
func TestProxyClusterHTMLRunsSandboxed(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Security-Policy", "default-src *")
		_, _ = io.WriteString(w, "<script>fetch('/api/v1/secrets')</script>")
	})
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: fixed("tok"), AcceptHosts: DefaultAcceptHosts})
	resp, err := http.Get("http://" + addr + "/api/v1/namespaces/tenant/services/http:evil:80/proxy/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Content-Security-Policy"); len(got) != 1 || got[0] != "sandbox" {
		t.Errorf("Content-Security-Policy %q, want only sandbox", got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
}

func TestProxyCapsConnectionsAndCutsIdleOnes(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {})
	addr := serve(t, ProxyOptions{
		Target: up.URL + "/k8s-proxy", Credential: fixed("tok"), AcceptHosts: DefaultAcceptHosts,
		MaxConnections: 5, HeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
	})
	// Five idle keep-alive connections take every slot...
	var conns []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /api HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conns = append(conns, c)
	}
	// ...so a sixth waits (queued, not served)...
	sixth, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sixth.Close()
	_, _ = io.WriteString(sixth, "GET /api HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
	served := make(chan time.Time, 1)
	go func() {
		if resp, err := http.ReadResponse(bufio.NewReader(sixth), nil); err == nil {
			resp.Body.Close()
			served <- time.Now()
		}
	}()
	start := time.Now()
	// ...until the idle ones are cut off.
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("an idle keep-alive connection was not closed: %v", err)
		}
	}
	select {
	case at := <-served:
		if at.Sub(start) < 100*time.Millisecond {
			t.Errorf("the sixth connection was served at once, past the cap of 5")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sixth connection was never served")
	}
}

func TestProxyFailsStalledBodies(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: fixed("tok"), AcceptHosts: DefaultAcceptHosts, BodyIdleTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: "+addr+"\r\nContent-Length: 1000\r\n\r\n{\"a\":")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a body that stalled held the connection")
	}
	t.Logf("stalled body cut after %s", time.Since(start).Round(10*time.Millisecond))
}

func TestProxyRenewsAtMostOncePerInterval(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Gitlab-Unauthorized", "true")
		w.WriteHeader(http.StatusUnauthorized)
	})
	var mu sync.Mutex
	calls, refreshes := 0, 0
	cred := func(_ context.Context, refresh bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if refresh {
			refreshes++
		}
		return "tok-" + string(rune('a'+calls)), nil
	}
	var log capture.Buffer // the proxy's goroutines write it
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: cred, AcceptHosts: DefaultAcceptHosts, Log: &log})
	for i := 0; i < 30; i++ {
		resp, err := http.Get("http://" + addr + "/api")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if refreshes != 1 {
		t.Errorf("%d renewals for 30 refused requests, want 1", refreshes)
	}
}

// A write (POST, PATCH with a body) that KAS refuses for the credential
// renews it and is sent again with its body; a body of unknown length, which
// is not kept, still gets the credential renewed for the next request.
func TestProxyRenewsOnRefusedWrites(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	issued, accepted := 0, 1 // KAS takes tok-<accepted> only
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Get("Authorization")+" "+string(b))
		if r.Header.Get("Authorization") != fmt.Sprintf("Bearer tok-%d", accepted) {
			w.Header().Set("Gitlab-Unauthorized", "true")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	cred := func(_ context.Context, refresh bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if refresh {
			issued++
		}
		return fmt.Sprintf("tok-%d", issued), nil
	}
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: cred, AcceptHosts: DefaultAcceptHosts, RenewInterval: time.Nanosecond})
	post := func(body io.Reader) int {
		resp, err := http.Post("http://"+addr+"/api/v1/namespaces/default/configmaps", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(strings.NewReader(`{"kind":"ConfigMap"}`)); code != http.StatusCreated {
		t.Errorf("a refused POST with a body: %d, want 201 after the renewal", code)
	}
	mu.Lock()
	if len(seen) != 2 || seen[1] != `Bearer tok-1 {"kind":"ConfigMap"}` {
		t.Errorf("KAS got %q, want the refused request and its replay with the body", seen)
	}
	accepted = 2 // tok-1 is revoked
	mu.Unlock()
	// Unknown length (chunked): not replayed, but renewed for the next.
	pr, pw := io.Pipe()
	go func() { _, _ = io.WriteString(pw, `{"kind":"Secret"}`); pw.Close() }()
	if code := post(pr); code != http.StatusUnauthorized {
		t.Errorf("a refused chunked POST: %d, want KAS's 401", code)
	}
	if code := post(strings.NewReader(`{}`)); code != http.StatusCreated {
		t.Errorf("the next POST: %d, want 201 with the renewed credential", code)
	}
}

// A path goes to KAS as the client escaped it: a%2Fb (one segment of a
// Service proxy path) is not a/b.
func TestProxyKeepsThePathsEscapes(t *testing.T) {
	got := make(chan string, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { got <- r.RequestURI })
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", Credential: fixed("tok"), AcceptHosts: DefaultAcceptHosts})
	for _, p := range []string{
		"/api/v1/namespaces/default/services/web:80/proxy/files/a%2Fb",
		"/api/v1/namespaces/default/services/web:80/proxy/q/a%2Bb%3Bc",
		"/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
		"/api/v1/namespaces/default/pods",
	} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if r := <-got; r != "/k8s-proxy"+p {
			t.Errorf("sent %s, KAS got %s", p, r)
		}
	}
}

// Kubernetes switches protocols to SPDY/3.1 and WebSocket only; any other
// Upgrade (h2c, anything KAS or a server behind it might speak) is refused
// before the credential is fetched or KAS is dialled.
func TestProxyPassesOnlyKubernetesUpgrades(t *testing.T) {
	var conns, hits, creds atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	var log capture.Buffer
	addr := serve(t, ProxyOptions{Target: up.URL + "/k8s-proxy", AcceptHosts: DefaultAcceptHosts, Log: &log,
		Credential: func(context.Context, bool) (string, error) { creds.Add(1); return "tok", nil }})
	status := func(upgrade ...string) int {
		req := "GET /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\n"
		for _, u := range upgrade {
			req += "Upgrade: " + u + "\r\n"
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, req+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	refused := [][]string{
		{"h2c"}, {"H2C"}, {"websocket, h2c"}, {"h2c,websocket"}, {"websocket", "h2c"},
		{"SPDY/3"}, {"spdy/3.1x"}, {"SPDY/3.1 websocket"}, {"TLS/1.0"}, {"HTTP/2.0"}, {""}, {" , "},
	}
	for _, u := range refused {
		if got := status(u...); got != http.StatusBadRequest {
			t.Errorf("Upgrade %q: %d, want 400", u, got)
		}
	}
	if conns.Load() != 0 || hits.Load() != 0 || creds.Load() != 0 {
		t.Fatalf("refused upgrades reached KAS: %d connections, %d requests, %d credentials fetched", conns.Load(), hits.Load(), creds.Load())
	}
	if n := strings.Count(log.String(), "refused GET"); n != len(refused) || strings.Contains(log.String(), "\x1b") {
		t.Errorf("%d refusal lines for %d refused upgrades:\n%s", n, len(refused), log.String())
	}
	passed := [][]string{{"SPDY/3.1"}, {"spdy/3.1"}, {"websocket"}, {"WebSocket"}, {"websocket, SPDY/3.1"}, {"websocket", "spdy/3.1"}}
	for _, u := range passed {
		if got := status(u...); got != http.StatusOK {
			t.Errorf("Upgrade %q: %d, want KAS's 200", u, got)
		}
	}
	if hits.Load() != int32(len(passed)) {
		t.Errorf("KAS saw %d of the %d Kubernetes upgrades", hits.Load(), len(passed))
	}
}
