package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// TestDiffRefusedIsOneLine: credentials the cluster refuses are one line
// and exit 2, however many objects; errors that objects share are one line
// with a count.
func TestDiffRefusedIsOneLine(t *testing.T) {
	c := newDiffCluster(t)
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\n", i)
	}
	f := writeFile(t, b.String())
	refused := &kube.AuthError{Code: 401, Server: "https://127.0.0.1:6443", Context: "team", User: "u", Err: apierrors.NewUnauthorized("Unauthorized")}
	c.Fail(fake.Read, c.Count(fake.Read)+1, refused)
	reads := c.Count(fake.Read)
	code, out, errOut := runDiff(t, c, "", "-f", f)
	if code != 2 || out != "" || errOut != "error: "+refused.Error()+"\n" {
		t.Errorf("refused: exit %d, %q, %q", code, out, errOut)
	}
	if n := c.Count(fake.Read) - reads; n != 1 {
		t.Errorf("%d reads after the cluster refused the credentials", n)
	}

	// The same refusal of every object but the first, which the cluster
	// names: one line with a count.
	for i := 2; i <= 200; i++ {
		name := fmt.Sprintf("cm-%d", i-1)
		c.Fail(fake.Read, c.Count(fake.Read)+i, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, name, errors.New(`User "u" cannot get resource "configmaps" in the namespace "team"`)))
	}
	code, out, errOut = runDiff(t, c, "", "-f", f, "--concurrency", "1")
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	want := `error: v1/ConfigMap/team/cm-1 and 198 more objects: reading the live object: configmaps "cm-1" is forbidden: User "u" cannot get resource "configmaps" in the namespace "team"`
	if code != 2 || len(lines) != 2 || lines[0] != want || lines[1] != "error: 199 of 200 objects could not be compared" || !strings.Contains(out, "v1/ConfigMap/team/cm-0") {
		t.Errorf("one refusal per object: exit %d\n%s\nwant:\n%s", code, errOut, want)
	}
}

// TestDiffCannotReachIsOneError: diff NAME and diff -f say the same one line
// of a cluster that does not answer, and diff NAME asks nothing more of it
// (it renders the agent as it runs only after the cluster answered).
func TestDiffCannotReachIsOneError(t *testing.T) {
	c := newDiffCluster(t)
	f := writeFile(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
	gone := &kube.UnreachableError{Server: "http://localhost:8080", Err: errors.New("dial tcp [::1]:8080: connect: connection refused")}
	var lines []string
	for _, args := range [][]string{{"prod"}, {"-f", f}, {"prod", "-f", f}} {
		c.Fail(fake.Reachable, c.Count(fake.Reachable)+1, gone)
		calls := len(c.Calls())
		code, out, errOut := runDiff(t, c, "", args...)
		if code != 2 || out != "" || errOut != "error: "+gone.Error()+"\n" {
			t.Errorf("diff %v: exit %d, %q, %q", args, code, out, errOut)
		}
		if got := c.Calls()[calls:]; len(got) != 1 || got[0].Method != fake.Reachable {
			t.Errorf("diff %v asked %v of a cluster that does not answer", args, got)
		}
		lines = append(lines, errOut)
	}

	// The real client: a cluster that answers /version and then no more.
	// diff NAME's first read (the agent's Deployment) says it as
	// Reachable would, not as Go's `Get "http://...": EOF`.
	var s *httptest.Server
	s = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
			return
		}
		s.Listener.Close()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer s.Close()
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(strings.Replace(diffKubeconfig, "https://127.0.0.1:1", s.URL, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	for _, args := range [][]string{{"prod"}, {"-f", f}} {
		var out, errOut bytes.Buffer
		code := Execute(DefaultFactory(), append([]string{"diff"}, args...), genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != 2 || out.Len() != 0 || !strings.HasPrefix(errOut.String(), "error: cannot reach the cluster at "+s.URL+" (context team): ") ||
			strings.Count(errOut.String(), "\n") != 1 || strings.Contains(errOut.String(), `Get "`) {
			t.Errorf("diff %v, a cluster gone after /version: exit %d, %q, %q", args, code, out.String(), errOut.String())
		}
		if _, err := net.Dial("tcp", s.Listener.Addr().String()); err == nil {
			t.Fatal("the stand-in still takes connections")
		}
	}
}
