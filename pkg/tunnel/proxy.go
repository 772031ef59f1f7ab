package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// DefaultAcceptHosts are the Host headers the proxy answers, as kubectl
// proxy's default: loopback names only, against DNS rebinding.
const DefaultAcceptHosts = `^localhost$,^127\.0\.0\.1$,^\[::1\]$`

// ProxyOptions configure the local proxy.
type ProxyOptions struct {
	// Target is KAS's Kubernetes API proxy URL (…/k8s-proxy).
	Target string
	// CAFile trusts a private CA for KAS, besides the system roots.
	CAFile string
	// Credential returns the bearer token; refresh asks for a new one
	// after KAS said GitLab refused the current one.
	Credential func(ctx context.Context, refresh bool) (string, error)
	// AcceptHosts are regular expressions, comma-separated, for the Host
	// header.
	AcceptHosts string
	Log         io.Writer
}

// Proxy forwards local requests to KAS with the credential attached.
type Proxy struct {
	handler http.Handler
}

// NewProxy builds the proxy handler.
func NewProxy(o ProxyOptions) (*Proxy, error) {
	target, err := url.Parse(strings.TrimRight(o.Target, "/"))
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("invalid KAS proxy URL %q", o.Target)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", o.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	accept, err := compileHosts(o.AcceptHosts)
	if err != nil {
		return nil, err
	}
	base := &http.Transport{
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
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     h1TLS,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout: 10 * time.Second,
	}
	rt := &credentialTransport{base: base, upgrades: upgrades, credential: o.Credential, log: o.Log}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.URL.Path = target.Path + pr.In.URL.Path
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Cookie")
			// The credential goes on here, on the proxy's own copy of the
			// request; the transport renews it when KAS refuses it.
			if tok, err := rt.current(pr.In.Context(), false, ""); err == nil {
				pr.Out.Header.Set("Authorization", "Bearer "+tok)
			} else {
				pr.Out.Header.Del("Authorization")
				fmt.Fprintf(o.Log, "proxy: getting a credential: %v\n", err)
			}
		},
		Transport: rt,
		// Watches and logs -f stream: pass every chunk on at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return
			}
			fmt.Fprintf(o.Log, "proxy: %s %s: %v\n", r.Method, r.URL.Path, err)
			http.Error(w, "kubectl gitlab-agent proxy: "+err.Error(), http.StatusBadGateway)
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
			http.Error(w, "kubectl gitlab-agent proxy: host "+r.Host+" not accepted (see --accept-hosts)", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	})
	return &Proxy{handler: h}, nil
}

// ServeHTTP serves one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// Serve answers on l until ctx ends, then stops accepting and lets running
// requests finish for a moment.
func (p *Proxy) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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

	mu    sync.Mutex
	token string
}

func (t *credentialTransport) current(ctx context.Context, refresh bool, refused string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && !refresh {
		return t.token, nil
	}
	if refresh && t.token != refused {
		return t.token, nil // another request refreshed it already
	}
	tok, err := t.credential(ctx, refresh)
	if err != nil {
		return "", err
	}
	t.token = tok
	return tok, nil
}

func (t *credentialTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" {
		return nil, fmt.Errorf("no credential for KAS")
	}
	base := t.base
	if r.Header.Get("Upgrade") != "" {
		base = t.upgrades
	}
	resp, err := base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusForbidden {
		t.explainForbidden(resp)
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Gitlab-Unauthorized") != "true" {
		return resp, err
	}
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return resp, nil // cannot send the body again
	}
	fresh, err := t.current(r.Context(), true, tok)
	if err != nil || fresh == tok {
		if err != nil {
			fmt.Fprintf(t.log, "proxy: GitLab refused the credential and a new one could not be had: %v\n", err)
		} else {
			fmt.Fprintln(t.log, "proxy: GitLab refused the credential for this agent: the agent's config.yaml user_access (or ci_access for a CI job) must name a project or group where you are Developer or more")
		}
		return resp, nil
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
	if bytes.Contains(b, []byte("agentId is not allowed")) {
		fmt.Fprintln(t.log, "proxy: KAS refuses this CI job for the agent: add the job's project to the agent's ci_access, e.g. 'kubectl gitlab-agent agent config set AGENT --ci-access-project GROUP/PROJECT'")
	}
}
