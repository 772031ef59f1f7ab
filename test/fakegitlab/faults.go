package fakegitlab

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

// Fault makes the fake misbehave on matching calls. Every route can be
// targeted by its pattern as registered in routes.go (the git smart HTTP
// service as GitHTTPRoute, the archive as ArchiveRoute), e.g.:
//
//	// the second commit is refused as a moved branch would be
//	s.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Nth: 2, Status: 400,
//		Message: "The file has changed since you started editing it: a.yaml"})
//	// a commit that GitLab made, whose answer is lost
//	s.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Nth: 1, Status: 502, AfterWork: true})
//	// an open merge request already exists
//	s.Inject(fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/merge_requests", Status: 409,
//		Message: []string{"Another open merge request already exists for this source branch: !1"}})
//	// deploy tokens refused, environments refused
//	s.Inject(fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/deploy_tokens", Status: 403})
//	s.Inject(fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/environments", Status: 400,
//		Message: "400 Bad request - cluster agent doesn't exist or cannot be associated with this environment"})
//	// the clone fails
//	s.Inject(fakegitlab.Fault{Route: fakegitlab.GitHTTPRoute, Status: 500})
type Fault struct {
	// Route is a route pattern as registered, e.g.
	// "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens"; empty
	// matches every route.
	Route string
	// Nth is the first matching call (1-based, counted from when the
	// fault was injected) that fails; 0 fails every matching call.
	Nth int
	// Count is how many calls from the Nth fail (default 1); ignored when
	// Nth is 0.
	Count int
	// Status answers with this status and a GitLab error body.
	Status int
	// RetryAfter is sent as the Retry-After header (seconds or a date).
	RetryAfter string
	// Latency delays the answer (or the failure).
	Latency time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// AfterWork lets the call do its work first (create the token, commit
	// the file) and then fails its answer as above: the lost answer of a
	// call that succeeded. With only Latency, the real answer comes late.
	AfterWork bool
	// Message, with Status, is the "message" of GitLab's error body
	// instead of the status's text: a string, a []string (as for merge
	// requests' 409) or a map of field errors.
	Message any
	// Body, with Status, is sent as is instead of GitLab's error body;
	// ContentType goes with it.
	Body        []byte
	ContentType string

	seen int // matching calls since injection
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count == 0 {
		f.Count = 1
	}
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// matchFault counts a call of route against every fault and returns the
// first that applies to it, if any.
func (s *Server) matchFault(route string) *Fault {
	var hit *Fault
	for _, f := range s.faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		f.seen++
		if hit == nil && (f.Nth == 0 || (f.seen >= f.Nth && f.seen < f.Nth+f.Count)) {
			hit = f
		}
	}
	return hit
}

// StatusRecorder passes a response through and remembers its status. It
// flushes and unwraps to the writer it wraps, so that streams and upgrades
// pass too.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
}

func (r *StatusRecorder) WriteHeader(code int) {
	if r.Status == 0 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *StatusRecorder) Write(b []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush flushes the wrapped writer when it can.
func (r *StatusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController (and a reverse proxy's upgrades)
// reach the connection.
func (r *StatusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// handle registers h for pattern, counting calls, recording them and
// applying faults first.
func (s *Server) handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	s.handleAs(mux, pattern, pattern, h)
}

// handleAs is handle for a route that faults, Calls and Requests know by
// another name than its mux pattern.
func (s *Server) handleAs(mux *http.ServeMux, pattern, name string, h http.HandlerFunc) {
	mux.HandleFunc(pattern, s.wrap(name, h))
}

// wrap is h counted, recorded and subject to faults as route name.
func (s *Server) wrap(pattern string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[pattern]++
		f := s.matchFault(pattern)
		latency := s.latency
		s.mu.Unlock()
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		rec := &StatusRecorder{ResponseWriter: w}
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.EscapedPath(), Pattern: pattern, Status: rec.Status})
			s.mu.Unlock()
		}()
		if f != nil {
			var done *httptest.ResponseRecorder
			if f.AfterWork {
				done = httptest.NewRecorder()
				h(done, r)
			}
			if f.Latency > 0 {
				select {
				case <-time.After(f.Latency):
				case <-r.Context().Done():
					return
				}
			}
			if f.Drop {
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						conn.Close()
					}
				}
				return
			}
			if f.Status != 0 {
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				if f.Body != nil {
					if f.ContentType != "" {
						w.Header().Set("Content-Type", f.ContentType)
					}
					rec.WriteHeader(f.Status)
					_, _ = rec.Write(f.Body)
					return
				}
				var msg any = statusMessage(f.Status)
				if f.Message != nil {
					msg = f.Message
				}
				writeError(rec, f.Status, msg)
				return
			}
			if done != nil {
				for k, v := range done.Header() {
					w.Header()[k] = v
				}
				rec.WriteHeader(done.Code)
				_, _ = rec.Write(done.Body.Bytes())
				return
			}
		}
		h(rec, r)
	}
}

// itoa is strconv.Itoa for int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
