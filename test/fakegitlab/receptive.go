package fakegitlab

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/url"
)

// Receptive agents: GitLab (Ultimate, self-managed, 17.4+) dials the agent
// at the URL of its URL configuration, one per agent, as
// doc/api/cluster_agents.md and lib/api/clusters/agent_url_configurations.rb
// describe them.

// URLConfiguration is a receptive agent's URL configuration.
type URLConfiguration struct {
	ID      int64
	AgentID int64
	URL     string
	// PublicKey is the base64 of the Ed25519 key GitLab made, "" with a
	// client certificate.
	PublicKey  string
	PrivateKey ed25519.PrivateKey
	ClientCert string
	CACert     string // PEM
	TLSHost    string
}

// SetReceptive turns receptive agents on (the default) or off: off, their
// endpoints answer 404, as a GitLab without Ultimate, older than 17.4, or
// with them turned off in its settings does.
func (s *Server) SetReceptive(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noReceptive = !on
}

// URLConfigurations lists a's URL configurations.
func (s *Server) URLConfigurations(a *Agent) []URLConfiguration {
	return pick(s, s.urls, func(u *URLConfiguration) bool { return u.AgentID == a.ID })
}

// AddURLConfiguration makes a receptive at rawURL directly, as a fixture,
// with a key pair as GitLab makes one.
func (s *Server) AddURLConfiguration(a *Agent, rawURL string) *URLConfiguration {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &URLConfiguration{ID: s.id(), AgentID: a.ID, URL: rawURL}
	u.withKeyPair()
	s.urls[u.ID] = u
	return u
}

func (u *URLConfiguration) withKeyPair() {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	u.PublicKey, u.PrivateKey = base64.StdEncoding.EncodeToString(pub), priv
}

// withReceptive is withAgent for the URL configuration routes: GitLab
// authenticates first, then answers 404 when receptive agents are not
// there, before it looks at the project.
func (s *Server) withReceptive(role Role, fn func(http.ResponseWriter, *http.Request, *User, *Agent)) http.HandlerFunc {
	return s.locked(func(w http.ResponseWriter, r *http.Request) {
		if u, _ := s.authenticate(w, r, false); u == nil {
			return
		}
		if s.noReceptive {
			writeError(w, http.StatusNotFound, "404 Not Found")
			return
		}
		if u, _, a := s.agentFor(w, r, role); a != nil {
			fn(w, r, u, a)
		}
	})
}

func urlConfigJSON(u *URLConfiguration) map[string]any {
	m := map[string]any{"id": u.ID, "agent_id": u.AgentID, "url": u.URL,
		"public_key": nil, "client_cert": nil, "ca_cert": nil, "tls_host": nil}
	for k, v := range map[string]string{"public_key": u.PublicKey, "client_cert": u.ClientCert, "ca_cert": u.CACert, "tls_host": u.TLSHost} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

func (s *Server) agentURLConfig(a *Agent) *URLConfiguration {
	for _, u := range s.urls {
		if u.AgentID == a.ID {
			return u
		}
	}
	return nil
}

func (s *Server) listURLConfigs(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	out := []any{}
	if u := s.agentURLConfig(a); u != nil {
		out = append(out, urlConfigJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// urlConfig is {url_configuration_id} of a: GitLab knows only the one the
// agent has.
func (s *Server) urlConfig(w http.ResponseWriter, r *http.Request, a *Agent) *URLConfiguration {
	u := s.agentURLConfig(a)
	if u == nil || itoa(u.ID) != r.PathValue("url_configuration_id") {
		writeError(w, http.StatusNotFound, "404 Not Found")
		return nil
	}
	return u
}

func (s *Server) getURLConfig(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	if u := s.urlConfig(w, r, a); u != nil {
		writeJSON(w, http.StatusOK, urlConfigJSON(u))
	}
}

func (s *Server) deleteURLConfig(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	if u := s.urlConfig(w, r, a); u != nil {
		delete(s.urls, u.ID)
		w.WriteHeader(http.StatusNoContent)
	}
}

// badRequest is GitLab's bad_request!(reason).
func badRequest(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusBadRequest, "400 Bad request - "+reason)
}

func (s *Server) createURLConfig(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	var body struct {
		URL        string `json:"url"`
		ClientCert string `json:"client_cert"`
		ClientKey  string `json:"client_key"`
		CACert     string `json:"ca_cert"`
		TLSHost    string `json:"tls_host"`
	}
	if err := decodeBody(r, &body); err != nil || body.URL == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "url is missing"})
		return
	}
	if s.agentURLConfig(a) != nil {
		badRequest(w, "URL configuration already exists for this agent")
		return
	}
	if u, err := url.Parse(body.URL); err != nil || (u.Scheme != "grpc" && u.Scheme != "grpcs") || u.Host == "" {
		badRequest(w, "Url is blocked: Only allowed schemes are grpc, grpcs")
		return
	}
	// The certificates come base64-encoded; GitLab decodes them first.
	decoded := map[string]string{}
	for k, v := range map[string]string{"Ca cert": body.CACert, "Client cert": body.ClientCert, "Client key": body.ClientKey} {
		if v == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			badRequest(w, k+" must be base64-encoded PEM")
			return
		}
		decoded[k] = string(b)
	}
	if ca := decoded["Ca cert"]; ca != "" && !isCertificate(ca) {
		badRequest(w, "Ca cert must be a valid PEM certificate")
		return
	}
	if (body.ClientCert == "") != (body.ClientKey == "") {
		badRequest(w, "client_cert and client_key must be given together")
		return
	}
	u := &URLConfiguration{ID: s.id(), AgentID: a.ID, URL: body.URL, CACert: decoded["Ca cert"], TLSHost: body.TLSHost}
	if body.ClientCert != "" {
		u.ClientCert = decoded["Client cert"]
	} else {
		u.withKeyPair()
	}
	s.urls[u.ID] = u
	writeJSON(w, http.StatusCreated, urlConfigJSON(u))
}

// isCertificate reports whether s is PEM holding certificates only.
func isCertificate(s string) bool {
	rest, n := []byte(s), 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); b.Type != "CERTIFICATE" || err != nil {
			return false
		}
		n++
	}
	return n > 0
}
