package gitlab

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxResponseBytes bounds what is read of one GitLab answer. The largest
// answer the plugin asks for is a 128 KiB config file or a page of 100 agents.
const MaxResponseBytes = 8 << 20

// Origin is scheme://host:port of a URL, the unit a credential is bound to.
func Origin(u *url.URL) string { return strings.ToLower(u.Scheme) + "://" + HostPort(u) }

// HostPort is the host and port u dials, the host in lower case and the
// scheme's default port when none is written (443 for https, wss and
// grpcs, else 80).
func HostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		switch strings.ToLower(u.Scheme) {
		case "https", "wss", "grpcs":
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// RedirectError is a redirect the client refused to follow because it leaves
// the origin the credential was given for.
type RedirectError struct {
	// From and To are origins (scheme://host:port), never whole URLs.
	From, To string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("GitLab at %s redirected to %s; the token is sent only to %s", e.From, e.To, e.From)
}

// ResponseTooLargeError is an answer longer than MaxResponseBytes.
type ResponseTooLargeError struct{ Limit int64 }

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("the answer is larger than %d MiB", e.Limit>>20)
}

// newHTTPClient is the client every GitLab call goes through: it follows a
// redirect only within origin (Go's own client would carry PRIVATE-TOKEN
// and JOB-TOKEN to any host), and sends each request through c's retrying
// transport (retry.go): each try bounded in time, no answer read past
// MaxResponseBytes. base, when given, supplies the transport (tests, custom
// CAs).
func newHTTPClient(base *http.Client, origin *url.URL, c *Client) *http.Client {
	hc := &http.Client{}
	if base != nil {
		*hc = *base
	}
	rt := hc.Transport
	if rt == nil {
		rt = defaultTransport()
	}
	hc.Transport = &retrying{rt: rt, c: c, max: MaxResponseBytes}
	allowed := Origin(origin)
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if to := Origin(req.URL); to != allowed {
			return &RedirectError{From: allowed, To: to}
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}
	return hc
}

// defaultTransport is a pooled transport that honours HTTPS_PROXY and
// friends, as the official client's default does. The time to connect, to
// shake hands and to wait for an answer is each try's
// (Options.RequestTimeout), not the transport's.
func defaultTransport() http.RoundTripper {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Cleartext reports whether credentials sent to rawURL would cross a network
// unencrypted: http (or ws, grpc) to a host other than this machine.
func Cleartext(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws", "grpc":
		return !IsLoopbackHost(u.Hostname())
	}
	return false
}

// IsLoopbackHost reports whether host is this machine: localhost or a
// loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
