package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// stallingGitLab answers the headers and the start of a body, then sends
// nothing more until the client goes; it counts requests.
func stallingGitLab(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"version":"17.`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(s.Close)
	return s.URL, &calls
}

// checkLines asserts that log has one retry line per try after the first,
// each naming the try that comes and the tries there were in all.
func checkLines(t *testing.T, log string, tries int, what string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	if log == "" {
		lines = nil
	}
	if len(lines) != tries-1 {
		t.Fatalf("%d tries, %d retry lines: %q", tries, len(lines), log)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("; retrying in "); !strings.HasPrefix(l, what+want) {
			t.Errorf("line %q does not start %q", l, what+want)
		}
		if want := fmt.Sprintf("(try %d of %d)", i+2, tries); !strings.HasSuffix(l, want) {
			t.Errorf("line %q does not end %q", l, want)
		}
	}
}

// oneLine fails unless err is a single line.
func oneLine(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if msg := err.Error(); !strings.Contains(msg, "\n") {
		return msg
	}
	t.Fatalf("error of more than one line: %q", err)
	return ""
}

func TestNeverAnsweringGitLab(t *testing.T) {
	const timeout = 200 * time.Millisecond
	newClient := func(t *testing.T, url string, log io.Writer) *Client {
		c, err := New(Options{URL: url, Credentials: Credentials{Token: "x", Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond, RequestTimeout: timeout, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("accepts and never answers: two tries, each bounded, and the line says so", func(t *testing.T) {
		url, conns := fakegitlab.Silent(t)
		host := strings.TrimPrefix(url, "http://")
		var log bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails the test, not the suite
		defer cancel()
		_, err := newClient(t, url, &log).ListAgents(ctx, proj)
		msg := oneLine(t, err)
		if ctx.Err() != nil {
			t.Fatalf("still waiting after a minute: %v", err)
		}
		want := "GitLab at " + host + " accepted the connection but sent no answer within 200ms"
		if !IsClass(err, ClassNetwork) || !strings.Contains(msg, want+" (2 tries)") || !strings.Contains(msg, "--request-timeout") || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v", err)
		}
		if n := conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
		checkLines(t, log.String(), 2, want)
	})
	t.Run("headers, then the body stalls: a timeout, not a bad answer", func(t *testing.T) {
		url, calls := stallingGitLab(t)
		host := strings.TrimPrefix(url, "http://")
		var log bytes.Buffer
		_, err := newClient(t, url, &log).DiscoverKAS(context.Background())
		msg := oneLine(t, err)
		want := "GitLab at " + host + " began to answer but did not finish within 200ms"
		if !IsClass(err, ClassNetwork) || !strings.Contains(msg, want+" (2 tries)") || strings.Contains(msg, "JSON") {
			t.Fatalf("%v", err)
		}
		if n := calls.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		checkLines(t, log.String(), 2, want)
	})
	t.Run("a call that creates is not sent twice once GitLab was reached", func(t *testing.T) {
		var posts atomic.Int32
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "[]")
				return
			}
			posts.Add(1)
			_, _ = io.Copy(io.Discard, r.Body) // then the server sees the client go
			<-r.Context().Done()
		}))
		t.Cleanup(s.Close)
		var log bytes.Buffer
		_, _, err := newClient(t, s.URL, &log).RegisterAgent(context.Background(), proj, "prod")
		msg := oneLine(t, err)
		if !strings.HasPrefix(msg, `registering agent "prod"`) || !strings.Contains(msg, "accepted the connection but sent no answer within 200ms") || strings.Contains(msg, "tries") {
			t.Fatalf("%v", err)
		}
		if n := posts.Load(); n != 1 {
			t.Errorf("%d POSTs, want 1", n)
		}
		checkLines(t, log.String(), 1, "")
	})
}

// TestCallBoundEndsATry: a try the call's bound (CallTimeout, doctor's
// check timeout) ends before its own says so, and how long it waited.
func TestCallBoundEndsATry(t *testing.T) {
	url, conns := fakegitlab.Silent(t)
	var log bytes.Buffer
	c, err := New(Options{URL: url, Credentials: Credentials{Token: "x", Source: "GITLAB_TOKEN"}, CallTimeout: 300 * time.Millisecond, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DiscoverKAS(context.Background())
	msg := oneLine(t, err)
	if !IsClass(err, ClassNetwork) || !strings.Contains(msg, "accepted the connection but sent no answer within ") || strings.Contains(msg, "--request-timeout") || strings.Contains(msg, "tries") {
		t.Fatalf("%v", err)
	}
	if n := conns.Load(); n != 1 || log.Len() != 0 {
		t.Errorf("%d connections, log %q", n, log.String())
	}
}

func TestRetryLines(t *testing.T) {
	t.Run("connection refused: not reached, every try announced", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		var log bytes.Buffer
		c, err := New(Options{URL: "http://" + addr, Credentials: Credentials{Token: "x", Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond, MaxRetries: 2, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListAgents(context.Background(), proj)
		msg := oneLine(t, err)
		if !IsClass(err, ClassNetwork) || !strings.Contains(msg, "cannot connect to http://"+addr+" (3 tries)") {
			t.Fatalf("%v", err)
		}
		checkLines(t, log.String(), 3, "cannot reach GitLab at "+addr+" (connection refused)")
	})
	t.Run("5xx: as many tries as the lines say, within the call's bound", func(t *testing.T) {
		var calls atomic.Int32
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		t.Cleanup(s.Close)
		var log bytes.Buffer
		// Two waits of 1s do not fit in 1.8s: two tries of five.
		c, err := New(Options{URL: s.URL, Credentials: Credentials{Token: "x", Source: "GITLAB_TOKEN"}, CallTimeout: 1800 * time.Millisecond, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListAgents(context.Background(), proj)
		msg := oneLine(t, err)
		n := int(calls.Load())
		if !IsClass(err, ClassServer) || n != 2 || !strings.Contains(msg, "gave up after 2 tries") {
			t.Fatalf("%v after %d tries", err, n)
		}
		checkLines(t, log.String(), n, "GitLab answered 503 Service Unavailable")
	})
}
