package doctor

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
)

// checkKASAddress: the address agentk dials is the one GitLab advertises.
func checkKASAddress(_ context.Context, d *doctor) Check {
	kas, err := d.metadata()
	if err != nil {
		return skip("GitLab's advertised KAS address is not known: see kas-enabled")
	}
	v, err := d.theAgentk()
	if err != nil {
		if c, ok := skipped(err); ok {
			return skip("GitLab advertises %s (%s)", kas.AgentURL, c.Message)
		}
		return fail("see agent-pods", "%v", err)
	}
	fix := fmt.Sprintf("kubectl gitlab-agent upgrade %s --kas-address %s", d.name, kas.AgentURL)
	got, err1 := url.Parse(v.KasAddress)
	want, err2 := url.Parse(kas.AgentURL)
	if err1 != nil || err2 != nil || got.Host == "" {
		return fail(fix, "agentk dials %q, GitLab advertises %s", v.KasAddress, kas.AgentURL)
	}
	g, w := normalURL(got), normalURL(want)
	switch {
	case g == w:
		return pass("agentk dials %s, as GitLab advertises", v.KasAddress)
	case g.host != w.host:
		return fail(fix, "agentk dials host %s, GitLab advertises %s", got.Host, want.Host)
	case g.scheme == w.scheme && g.path != "/" && w.path != "/" && strings.TrimRight(g.path, "/") == strings.TrimRight(w.path, "/"):
		// Only the trailing slash: GitLab's web server redirects the
		// WebSocket without it, and the handshake fails.
		return fail(fix, "agentk dials %s, GitLab advertises %s: the trailing slash matters (without it the WebSocket is redirected)", v.KasAddress, kas.AgentURL)
	case g.path == w.path && secureOf(g.scheme) == secureOf(w.scheme):
		// wss:// and grpcs:// both reach KAS where it serves both.
		return warn(fix, "agentk dials %s, GitLab advertises %s (another protocol to the same place): see kas-handshake", v.KasAddress, kas.AgentURL)
	}
	return fail(fix, "agentk dials %s, GitLab advertises %s", v.KasAddress, kas.AgentURL)
}

// normal is a KAS address as it is dialled: scheme and host in lower case,
// the port explicit, an empty path "/".
type normal struct{ scheme, host, path string }

func normalURL(u *url.URL) normal {
	n := normal{scheme: strings.ToLower(u.Scheme), path: u.EscapedPath(), host: gitlab.HostPort(u)}
	if n.path == "" {
		n.path = "/"
	}
	return n
}

func secureOf(scheme string) bool { return scheme == "wss" || scheme == "grpcs" || scheme == "https" }

// checkKASDNS: the KAS host resolves.
func checkKASDNS(ctx context.Context, d *doctor) Check {
	t, err := d.target()
	if err != nil {
		return failedOn(err, "see kas-address")
	}
	host := t.u.Hostname()
	if net.ParseIP(host) != nil {
		return pass("%s is an IP address (%s)", host, t.from)
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return fail("check the host in "+t.from+" (GitLab advertises KAS's in /metadata), and the DNS the cluster uses", "%s does not resolve (%s)", host, t.from)
		}
		return fail("check the resolver (and, in the cluster, CoreDNS)", "looking up %s: %v", host, err)
	}
	return pass("%s resolves to %s (%s)", host, strings.Join(addrs, ", "), t.from)
}

// checkKASTLS: the handshake succeeds and KAS's certificate is trusted with
// the CAs agentk has.
func checkKASTLS(ctx context.Context, d *doctor) Check {
	t, err := d.target()
	if err != nil {
		return failedOn(err, "see kas-address")
	}
	if !secureOf(t.u.Scheme) {
		return warn("use wss:// or grpcs://: the agent token crosses the network in the clear", "%s (%s) is not encrypted", t.u, t.from)
	}
	conn, err := dialTLS(ctx, d, t, nil)
	if err != nil {
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		var hostErr x509.HostnameError
		switch {
		case errors.As(err, &unknown):
			return fail("give agentk the CA that signed KAS's certificate (the chart's config.kasCaCert): kubectl gitlab-agent upgrade "+d.name+" --set-file config.kasCaCert=ca.pem",
				"KAS's certificate at %s is signed by a CA agentk does not trust", t.u.Host)
		case errors.As(err, &hostErr):
			return fail("use the host name on KAS's certificate in --kas-address, or fix the certificate", "%v", err)
		case errors.As(err, &invalid):
			return fail("renew KAS's certificate", "%v", err)
		}
		if msg, fix := unanswered(err, t.u.Host, d.env.Timeout); msg != "" {
			return fail(fix, "%s", msg)
		}
		return fail("this machine cannot reach "+t.u.Host+": check egress here and from the cluster (firewall, HTTPS_PROXY)", "TLS to %s from here: %v", t.u.Host, err)
	}
	defer conn.Close()
	cert := conn.ConnectionState().PeerCertificates[0]
	return pass("%s presents a trusted certificate, valid until %s", t.u.Host, cert.NotAfter.Format("2006-01-02"))
}

// isTLSTrust reports whether err is a certificate agentk would refuse.
func isTLSTrust(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostErr) || errors.As(err, &verify)
}

// stageError says which step of reaching KAS failed: the TCP connection or
// the TLS handshake on it.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// dial connects to KAS with Env.Dial.
func (d *doctor) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.env.Dial != nil {
		return d.env.Dial(ctx, network, addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func dialTLS(ctx context.Context, d *doctor, t *kasTarget, alpn []string) (*tls.Conn, error) {
	raw, err := d.dial(ctx, "tcp", gitlab.HostPort(t.u))
	if err != nil {
		return nil, &stageError{"connecting", err}
	}
	c := tls.Client(raw, &tls.Config{ServerName: t.u.Hostname(), RootCAs: t.cas, NextProtos: alpn, MinVersion: tls.VersionTLS12})
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &stageError{"TLS handshake", err}
	}
	return c, nil
}

// unanswered explains a KAS that does not answer in time, or "" when err is
// something else.
func unanswered(err error, host string, timeout time.Duration) (msg, fix string) {
	var se *stageError
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		return "", ""
	}
	if errors.As(err, &se) && se.stage == "TLS handshake" {
		return fmt.Sprintf("%s accepts the connection but the TLS handshake gets no answer within %s", host, timeout),
			"from here, something holds the connection (a proxy that needs HTTPS_PROXY, a TLS-inspecting middlebox, a port that is not KAS's): check egress to " + host + " from here and from the cluster"
	}
	return fmt.Sprintf("connecting to %s gets no answer within %s", host, timeout),
		"a firewall drops the packets, or the address is wrong: check egress to " + host + " from here and from the cluster, and the host in --kas-address"
}

// checkKASHandshake: the agent protocol's first step, as agentk takes it:
// a WebSocket upgrade for ws(s)://, HTTP/2 over TLS for grpcs://.
func checkKASHandshake(ctx context.Context, d *doctor) Check {
	t, err := d.target()
	if err != nil {
		return failedOn(err, "see kas-address")
	}
	switch t.u.Scheme {
	case "grpcs":
		// Offering http/1.1 too lets a server without HTTP/2 answer
		// (many refuse a client offering only h2), so that this can say so.
		conn, err := dialTLS(ctx, d, t, []string{"h2", "http/1.1"})
		if err != nil {
			if msg, _ := unanswered(err, t.u.Host, d.env.Timeout); msg != "" {
				return fail("see kas-tls", "%s", msg)
			}
			return fail("see kas-tls", "TLS to %s: %v", t.u.Host, err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			return fail("use the wss:// address GitLab advertises: this endpoint does not speak gRPC", "%s does not offer HTTP/2 (ALPN %q): no gRPC there", t.u.Host, p)
		}
		return pass("%s speaks HTTP/2 for gRPC", t.u.Host)
	case "grpc":
		conn, err := d.dial(ctx, "tcp", gitlab.HostPort(t.u))
		if err != nil {
			return fail("this machine cannot reach "+t.u.Host+": check egress here and from the cluster", "from here: %v", err)
		}
		conn.Close()
		return pass("%s accepts connections (plain gRPC)", t.u.Host)
	case "wss", "ws":
		return websocketHandshake(ctx, d, t)
	}
	return fail("use the wss:// or grpcs:// address GitLab advertises", "agentk cannot dial scheme %q", t.u.Scheme)
}

func websocketHandshake(ctx context.Context, d *doctor, t *kasTarget) Check {
	u := *t.u
	u.Scheme = map[string]string{"wss": "https", "ws": "http"}[u.Scheme]
	if u.Path == "" {
		u.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("see kas-address", "%v", err)
	}
	for k, vs := range t.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key[:]))
	client := &http.Client{
		Transport: &http.Transport{DialContext: d.dial, Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: t.cas, ServerName: t.u.Hostname(), MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil && isTLSTrust(err) {
		return fail("see kas-tls", "WebSocket to %s: KAS's certificate is not trusted", t.u.Redacted())
	}
	if msg, _ := unanswered(err, t.u.Host, d.env.Timeout); err != nil && msg != "" {
		return fail("see kas-tls", "the WebSocket to %s gets no answer within %s", t.u.Redacted(), d.env.Timeout)
	}
	if err != nil {
		return fail("see kas-dns and kas-tls; check egress to "+t.u.Host+" from here and from the cluster (firewall, HTTPS_PROXY)", "WebSocket to %s from here: %v", t.u.Redacted(), err)
	}
	defer resp.Body.Close()
	fix := fmt.Sprintf("kubectl gitlab-agent upgrade %s --kas-address <the address GitLab advertises>", d.name)
	if kas, err := d.metadata(); err == nil {
		fix = fmt.Sprintf("kubectl gitlab-agent upgrade %s --kas-address %s", d.name, kas.AgentURL)
	}
	switch resp.StatusCode {
	case http.StatusSwitchingProtocols:
		return pass("%s accepts the agent's WebSocket (101)", t.u.Redacted())
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		loc := resp.Header.Get("Location")
		if lacksSlash(&u, loc) {
			return fail(fix+" (with the trailing slash)", "%s redirects the WebSocket (%d) to %s: the address lacks its trailing slash", t.u.Redacted(), resp.StatusCode, safeLoc(loc))
		}
		return fail(fix, "%s redirects the WebSocket (%d) to %s", t.u.Redacted(), resp.StatusCode, safeLoc(loc))
	case http.StatusUpgradeRequired, http.StatusBadRequest:
		return fail(fix+" (grpcs:// for a gRPC endpoint, wss:// for a WebSocket one)", "%s refuses the WebSocket (%d): it speaks another protocol", t.u.Redacted(), resp.StatusCode)
	case http.StatusNotFound:
		return fail(fix, "%s has no agent endpoint (404): is this KAS's address?", t.u.Redacted())
	}
	// The first line of the answer, read within a bound: a hostile
	// endpoint may send no newline at all.
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4<<10)).ReadString('\n')
	return fail(fix, "%s answers the WebSocket with %s %s", t.u.Redacted(), resp.Status, strings.TrimSpace(clip(line, 120)))
}

// lacksSlash reports a redirect from u's path to the same path with a
// trailing slash, what GitLab's web server answers for
// /-/kubernetes-agent.
func lacksSlash(u *url.URL, loc string) bool {
	l, err := u.Parse(loc)
	p := u.EscapedPath()
	return err == nil && p != "" && !strings.HasSuffix(p, "/") && l.EscapedPath() == p+"/" && strings.EqualFold(l.Host, u.Host)
}

func safeLoc(s string) string { return clip(s, 200) }

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
