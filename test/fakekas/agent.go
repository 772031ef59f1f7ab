package fakekas

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Endpoint is how an AgentEndpoint answers agentk's dial.
type Endpoint int

// The behaviours of an AgentEndpoint.
const (
	// WebSocket answers the WebSocket upgrade on Path with 101, as KAS does;
	// Path without its trailing slash is redirected (301) to it, as GitLab's
	// web server does for /-/kubernetes-agent.
	WebSocket Endpoint = iota
	// GRPC offers HTTP/2 (ALPN h2) and refuses a WebSocket with 426.
	GRPC
	// BlackHole accepts connections and never answers.
	BlackHole
)

// AgentEndpoint stands in for KAS's agent endpoint, the address agentk
// dials, over TLS with httptest's certificate (trust it with CAPEM).
type AgentEndpoint struct {
	// URL is the address to give agentk: wss://, or grpcs:// for GRPC.
	URL  string
	Path string

	srv      *httptest.Server
	listener net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	upgrades int
}

// NewAgentEndpoint starts an endpoint behaving as mode; path is where the
// agent endpoint is ("/" on GitLab.com's KAS, "/-/kubernetes-agent/" on
// GitLab's own host).
func NewAgentEndpoint(mode Endpoint, path string) *AgentEndpoint {
	e := &AgentEndpoint{Path: path}
	if mode == BlackHole {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		e.listener = l
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				e.mu.Lock()
				e.conns = append(e.conns, c) // held open, never answered
				e.mu.Unlock()
			}
		}()
		e.URL = "wss://" + l.Addr().String() + path
		return e
	}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.serve(mode, w, r)
	}))
	e.srv.EnableHTTP2 = mode == GRPC
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what tests play
	e.srv.StartTLS()
	scheme := map[Endpoint]string{WebSocket: "wss", GRPC: "grpcs"}[mode]
	e.URL = scheme + "://" + e.srv.Listener.Addr().String() + path
	return e
}

func (e *AgentEndpoint) serve(mode Endpoint, w http.ResponseWriter, r *http.Request) {
	websocket := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	switch {
	case mode == GRPC:
		if websocket {
			http.Error(w, "upgrade required: this is KAS's gRPC endpoint", http.StatusUpgradeRequired)
			return
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == strings.TrimSuffix(e.Path, "/") && e.Path != "/":
		http.Redirect(w, r, e.Path, http.StatusMovedPermanently)
	case r.URL.Path != e.Path:
		http.NotFound(w, r)
	case !websocket:
		http.Error(w, "WebSocket only", http.StatusBadRequest)
	default:
		e.mu.Lock()
		e.upgrades++
		e.mu.Unlock()
		h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close() // the tunnel itself is not played here
		_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n")
		_ = buf.Flush()
	}
}

// CAPEM is the PEM of the certificate the endpoint presents, for agentk's
// config.kasCaCert.
func (e *AgentEndpoint) CAPEM() string {
	if e.srv == nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw}))
}

// Upgrades counts the WebSocket upgrades answered.
func (e *AgentEndpoint) Upgrades() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.upgrades
}

// Close stops the endpoint.
func (e *AgentEndpoint) Close() {
	if e.srv != nil {
		e.srv.CloseClientConnections()
		e.srv.Close()
	}
	if e.listener != nil {
		e.listener.Close()
		e.mu.Lock()
		for _, c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
	}
}
