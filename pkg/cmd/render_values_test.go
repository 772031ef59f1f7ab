package cmd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
)

// TestValuesFromAURL: -f https://... is read as Helm reads it, within the
// values cap, naming the URL without its query; only https is read.
func TestValuesFromAURL(t *testing.T) {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/values.yaml", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "replicas: 5\nimage:\n  tag: 18\n")
	})
	mux.HandleFunc("/bad.yaml", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "replicas: two\n") })
	mux.HandleFunc("/huge.yaml", func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("# padding\n", 1<<12)
		for written := 0; written <= input.MaxValues; written += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/values.yaml", http.StatusFound)
	})
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	read := func(url string) error {
		f := RenderFlags{ValuesFiles: []string{url}, CreateNamespace: true}
		in, err := f.Input(context.Background(), httpsFactory{client: s.Client()}, "prod", "", strings.NewReader(""))
		if err == nil && (in.Values.Replicas != 5 || in.Values.Image.Tag != "18") {
			t.Errorf("%s: replicas %d, tag %q", url, in.Values.Replicas, in.Values.Image.Tag)
		}
		return err
	}
	if err := read(s.URL + "/values.yaml"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/bad.yaml?private_token=s3cr3t": s.URL + "/bad.yaml: replicas: want an integer",
		"/huge.yaml":                     "values file " + s.URL + "/huge.yaml is larger than 8 MiB",
		"/missing.yaml?token=s3cr3t":     "-f " + s.URL + "/missing.yaml: the server answered 404 Not Found",
		"/to-http":                       "-f " + s.URL + "/to-http: a redirect to http, not https",
	} {
		err := read(s.URL + path)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	before := hits.Load()
	plain := "http" + strings.TrimPrefix(s.URL, "https") + "/values.yaml"
	if err := read(plain); err == nil || !strings.Contains(err.Error(), "only https URLs are read") {
		t.Errorf("%s: %v", plain, err)
	}
	if hits.Load() != before {
		t.Error("an http URL was requested")
	}
}

// TestSetStringAndSetJSONFlags: render takes Helm's --set-string and
// --set-json, layered as Helm layers them.
func TestSetStringAndSetJSONFlags(t *testing.T) {
	code, out, errOut := run(t, "", "render", "demo", "--set-json", `tolerations=[{"operator":"Exists"}]`, "--set-json", "replicas=4",
		"--set", "image.tag=v18.0.0", "--set-string", "image.tag=18", "--set-string", "podLabels.team=7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"replicas: 4\n", "- operator: Exists\n", "/agentk:18\n", "team: \"7\"\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// httpsFactory reads files by URL with client (trusting a test server).
type httpsFactory struct {
	fakeFactory
	client *http.Client
}

func (f httpsFactory) HTTPClient() *http.Client { return f.client }
