package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// DefaultAcceptHosts are the Host headers the proxy answers, as kubectl
// proxy's default: loopback names only, against DNS rebinding.
const DefaultAcceptHosts = `^localhost$,^127\.0\.0\.1$,^\[::1\]$`

// ProxyOptions configure the local proxy.
type ProxyOptions struct {
	// Target is KAS's Kubernetes API proxy URL (…/k8s-proxy).
	Target string
	// CA (PEM, from --ca-file) trusts a private CA for KAS, besides the
	// system roots.
	CA []byte
	// Credential returns the bearer token; refresh asks for a new one
	// after KAS said GitLab refused the current one.
	Credential func(ctx context.Context, refresh bool) (string, error)
	// AcceptHosts are regular expressions, comma-separated, for the Host
	// header.
	AcceptHosts string
	Log         io.Writer
	// MaxConnections bounds the client connections served at once; more
	// wait to be accepted (default DefaultMaxConnections).
	MaxConnections int
	// HeaderTimeout bounds reading a request's headers, IdleTimeout closes
	// a keep-alive connection with no request, BodyIdleTimeout fails a
	// request body that sends nothing for that long (defaults 10s, 60s,
	// 60s). Streams (watches, logs -f, exec) are not bounded.
	HeaderTimeout, IdleTimeout, BodyIdleTimeout time.Duration
	// RenewInterval is the least time between two credential renewals
	// (default RenewInterval).
	RenewInterval time.Duration
	// Dial opens connections to KAS (or to the HTTPS proxy on the way);
	// nil: a net.Dialer's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultMaxConnections is the default connection cap: far above what kubectl,
// helm, k9s or Lens open, far below what exhausts file descriptors.
const DefaultMaxConnections = 256

// Proxy forwards local requests to KAS with the credential attached.
type Proxy struct {
	handler http.Handler
	o       ProxyOptions
}

// NewProxy builds the proxy handler.
func NewProxy(o ProxyOptions) (*Proxy, error) {
	target, err := url.Parse(strings.TrimRight(o.Target, "/"))
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("invalid KAS proxy URL %q", o.Target)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(o.CA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(o.CA) {
			return nil, fmt.Errorf("--ca-file holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	accept, err := compileHosts(o.AcceptHosts)
	if err != nil {
		return nil, err
	}
	base := &http.Transport{
		DialContext:         o.Dial,
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	// Upgrades (exec, attach, port-forward; SPDY above all) cannot go over
	// HTTP/2: they get a transport that speaks HTTP/1.1 only.
	h1TLS := tlsCfg.Clone()
	h1TLS.NextProtos = []string{"http/1.1"}
	upgrades := &http.Transport{
		DialContext:         o.Dial,
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     h1TLS,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.RenewInterval <= 0 {
		o.RenewInterval = RenewInterval
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.BodyIdleTimeout <= 0 {
		o.BodyIdleTimeout = 60 * time.Second
	}
	rt := &credentialTransport{base: base, upgrades: upgrades, credential: o.Credential, log: o.Log, renewEvery: o.RenewInterval}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			// The client's escapes stay (a%2Fb is not a/b to a Service
			// proxy path); checkPath vetted every decoding.
			pr.Out.URL.Path = target.Path + pr.In.URL.Path
			pr.Out.URL.RawPath = target.EscapedPath() + pr.In.URL.EscapedPath()
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Cookie")
			// The credential goes on here, on the proxy's own copy of the
			// request; the transport renews it when KAS refuses it.
			if tok, err := rt.current(pr.In.Context(), false, ""); err == nil {
				pr.Out.Header.Set("Authorization", "Bearer "+tok)
			} else {
				pr.Out.Header.Del("Authorization")
				fmt.Fprintf(o.Log, "proxy: getting a credential: %s\n", safetext.Line(err.Error()))
			}
		},
		Transport: rt,
		// For a browser too old to send Sec-Fetch-* (fromBrowser): HTML from
		// the cluster runs in a sandbox, an origin of its own, so its script
		// cannot call the proxy as the proxy's own page; nothing is sniffed
		// into HTML. Tools ignore both headers.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Content-Security-Policy", "sandbox")
			resp.Header.Set("X-Content-Type-Options", "nosniff")
			return nil
		},
		// Watches and logs -f stream: pass every chunk on at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return
			}
			msg := safetext.Line(err.Error())
			if hint := tlsHint(err); hint != "" {
				msg += ": " + hint
			}
			fmt.Fprintf(o.Log, "proxy: %s %s: %s\n", r.Method, safetext.Remote(r.URL.Path, 200), msg)
			http.Error(w, "kubectl gitlab-agent proxy: "+msg, http.StatusBadGateway)
		},
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
		if !matchesAny(accept, host) {
			http.Error(w, "kubectl gitlab-agent proxy: host "+safetext.Remote(r.Host, 100)+" not accepted (see --accept-hosts)", http.StatusForbidden)
			return
		}
		if why := fromBrowser(r); why != "" {
			fmt.Fprintf(o.Log, "proxy: refused %s %s from %s: browsers may not use the proxy\n", r.Method, safetext.Remote(r.URL.Path, 200), why)
			http.Error(w, "kubectl gitlab-agent proxy: requests from browsers are refused: the proxy serves command-line tools", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodConnect || r.Method == http.MethodTrace {
			http.Error(w, "kubectl gitlab-agent proxy: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := checkUpgrade(r.Header); err != nil {
			fmt.Fprintf(o.Log, "proxy: refused %s %s: %v\n", r.Method, safetext.Remote(r.URL.EscapedPath(), 200), err)
			http.Error(w, "kubectl gitlab-agent proxy: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := checkPath(r.URL); err != nil {
			fmt.Fprintf(o.Log, "proxy: refused %s %s: %v\n", r.Method, safetext.Remote(r.URL.EscapedPath(), 200), err)
			http.Error(w, "kubectl gitlab-agent proxy: "+err.Error(), http.StatusBadRequest)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &idleBody{rc: r.Body, ctl: http.NewResponseController(w), idle: o.BodyIdleTimeout}
		}
		rp.ServeHTTP(w, r)
	})
	return &Proxy{handler: h, o: o}, nil
}

// fromBrowser says why r comes from a browser, or "" when it does not. The
// proxy serves command-line tools (kubectl, helm, k9s and Lens send no
// Origin and no Sec-Fetch-* header); every browser request carries one or
// the other. Any page, even one on another port of this machine, reaches a
// loopback listener, and the proxy's own origin is no safer: a Service or
// pod proxy path (.../services/NAME/proxy/) serves whatever HTML the cluster
// holds, and a link to it opened from mail or chat (Sec-Fetch-Site: none)
// would run that page's script on this origin, with this credential.
//
// One Origin is let through: the proxy's own, on loopback, on a request with
// no Sec-Fetch-* header. WebSocket clients that are not browsers send it
// (Python's websocket-client, so the Kubernetes Python client's exec,
// attach and port-forward); a browser sends Sec-Fetch-* with it, and a page
// the proxy serves runs sandboxed (Content-Security-Policy), with the
// origin "null".
func fromBrowser(r *http.Request) string {
	for _, h := range []string{"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User"} {
		if v := r.Header.Get(h); v != "" {
			return "a browser (" + h + ": " + safetext.Remote(v, 40) + ")"
		}
	}
	if origin := r.Header.Get("Origin"); origin != "" && !(strings.EqualFold(origin, "http://"+r.Host) && loopbackHost(r.Host)) {
		return "the web page at " + safetext.Remote(origin, 100)
	}
	return ""
}

// loopbackHost reports a Host header that names this machine's loopback.
// Only there does a browser send Sec-Fetch-* over plain http (a potentially
// trustworthy origin); a page rebound to another name sends none, so its
// own Origin proves nothing.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return IsLoopback(strings.Trim(host, "[]"))
}

// checkPath refuses a path that could reach KAS or GitLab outside
// /k8s-proxy/ once some server along the way decodes and cleans it: a "." or
// ".." segment in any of its decodings (%2e%2e, ..%2f, %252e), a backslash,
// a NUL, or a path that is not absolute.
func checkPath(u *url.URL) error {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("the path must start with /")
	}
	for range 4 {
		if strings.ContainsAny(p, "\\\x00") {
			return fmt.Errorf("the path has a backslash or NUL")
		}
		for _, seg := range strings.Split(p, "/") {
			seg, _, _ = strings.Cut(seg, ";") // path parameters some servers strip
			if seg == "." || seg == ".." {
				return fmt.Errorf("the path has a '.' or '..' segment (encoded or not): it could leave the Kubernetes API")
			}
		}
		next, err := url.PathUnescape(p)
		if err != nil {
			return fmt.Errorf("the path has a malformed escape")
		}
		if next == p {
			return nil
		}
		p = next
	}
	return fmt.Errorf("the path is encoded too many times")
}

// kubernetesUpgrades are the protocols Kubernetes switches to: SPDY/3.1 (exec, attach,
// port-forward, cp) and WebSocket (the same since 1.30, and watches).
var kubernetesUpgrades = []string{"spdy/3.1", "websocket"}

// checkUpgrade refuses an Upgrade header that names any other protocol (h2c,
// or anything KAS or a server behind it might switch to with the
// credential attached). Every comma-separated token of every Upgrade header
// must be one of kubernetesUpgrades, in any case.
func checkUpgrade(h http.Header) error {
	for _, v := range h.Values("Upgrade") {
		named := false
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			named = true
			if !slices.ContainsFunc(kubernetesUpgrades, func(u string) bool { return strings.EqualFold(u, p) }) {
				return fmt.Errorf("upgrade %q refused: the proxy passes on only the upgrades Kubernetes uses, SPDY/3.1 and websocket", safetext.Remote(p, 40))
			}
		}
		if !named {
			return fmt.Errorf("an empty Upgrade header is refused: the proxy passes on only SPDY/3.1 and websocket")
		}
	}
	return nil
}

// idleBody fails a request body that sends nothing for idle, so that a slow
// client cannot hold a connection.
type idleBody struct {
	rc   io.ReadCloser
	ctl  *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		// The whole body came: the connection may idle (a watch) from
		// here. After a timeout the deadline stays, so that the server's
		// drain of the rest fails too and the connection is closed.
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *idleBody) Close() error { return b.rc.Close() }

// tlsHint says what to do about a certificate KAS's client did not trust.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return "KAS's certificate is signed by an unknown authority: pass --ca-file with KAS's CA (PEM)"
	case errors.As(err, &hostErr):
		return "KAS's certificate does not match its host: check the KAS proxy URL"
	}
	return ""
}

// ServeHTTP serves one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// Serve answers on l until ctx ends, then stops accepting and lets running
// requests finish for a moment. At most MaxConnections clients are served at
// once; slow and idle ones are cut off by the timeouts.
func (p *Proxy) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: p.o.HeaderTimeout,
		IdleTimeout:       p.o.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(l, p.o.MaxConnections)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

func compileHosts(list string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("--accept-hosts %q: %w", s, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// IsLoopback reports whether a listen address is loopback only.
func IsLoopback(address string) bool {
	if address == "localhost" {
		return true
	}
	ip := net.ParseIP(address)
	return ip != nil && ip.IsLoopback()
}

// credentialTransport attaches the credential and, when KAS answers 401
// with Gitlab-Unauthorized (GitLab refused the credential), gets a new one
// and repeats the request once if it can be repeated.
type credentialTransport struct {
	base       http.RoundTripper
	upgrades   http.RoundTripper
	credential func(ctx context.Context, refresh bool) (string, error)
	log        io.Writer
	renewEvery time.Duration

	mu        sync.Mutex
	token     string
	renewedAt time.Time
	saidAt    time.Time
}

// errRenewedRecently: the credential was renewed less than renewEvery ago.
var errRenewedRecently = errors.New("renewed less than a minute ago")

func (t *credentialTransport) current(ctx context.Context, refresh bool, refused string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && !refresh {
		return t.token, nil
	}
	if refresh && t.token != refused {
		return t.token, nil // another request refreshed it already
	}
	if refresh {
		// Every new token mails the user: at most one per interval,
		// however many requests KAS refuses.
		if !t.renewedAt.IsZero() && time.Since(t.renewedAt) < t.renewEvery {
			return t.token, errRenewedRecently
		}
		t.renewedAt = time.Now()
	}
	tok, err := t.credential(ctx, refresh)
	if err != nil {
		return "", err
	}
	t.token = tok
	return tok, nil
}

// say logs msg at most once per renewal interval.
func (t *credentialTransport) say(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.saidAt.IsZero() && time.Since(t.saidAt) < t.renewEvery {
		return
	}
	t.saidAt = time.Now()
	fmt.Fprintln(t.log, msg)
}

// replayBodyMax is the largest request body kept to be sent again after
// KAS refused the credential.
const replayBodyMax = 1 << 20

func (t *credentialTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" {
		return nil, fmt.Errorf("no credential for KAS")
	}
	base := t.base
	if r.Header.Get("Upgrade") != "" {
		base = t.upgrades
	} else if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil && r.ContentLength >= 0 && r.ContentLength <= replayBodyMax {
		// Kept, to be sent again should KAS refuse the credential: an
		// object kubectl writes is small (a body of unknown length, a
		// stream, is not kept).
		b, err := io.ReadAll(io.LimitReader(r.Body, replayBodyMax+1))
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r = r.WithContext(r.Context()) // a copy: the caller's request stays as it was
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusForbidden {
		t.explainForbidden(resp)
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Gitlab-Unauthorized") != "true" {
		return resp, err
	}
	fresh, err := t.current(r.Context(), true, tok)
	if err != nil || fresh == tok {
		var tooSoon *RenewTooSoonError
		switch {
		case errors.Is(err, errRenewedRecently), errors.As(err, &tooSoon), err == nil:
			t.say("proxy: GitLab refused the credential for this agent: the agent's config.yaml user_access (or ci_access for a CI job) must name a project or group where you are Developer or more")
		default:
			t.say("proxy: GitLab refused the credential and a new one could not be had: " + safetext.Line(err.Error()))
		}
		return resp, nil
	}
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return resp, nil // renewed for the next request; this body cannot be sent again
	}
	resp.Body.Close()
	retry := r.Clone(r.Context())
	if r.GetBody != nil {
		if retry.Body, err = r.GetBody(); err != nil {
			return nil, err
		}
	}
	retry.Header.Set("Authorization", "Bearer "+fresh)
	return base.RoundTrip(retry)
}

// explainForbidden says what to do when KAS refuses a CI job for the agent
// (its body is small; it is put back for the client).
func (t *credentialTransport) explainForbidden(resp *http.Response) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	if bytes.Contains(b, []byte(ciAccessRefusal)) {
		fmt.Fprintln(t.log, "proxy: "+safetext.Line(CIAccessHint(os.Getenv("CI_PROJECT_PATH"))))
	}
}
