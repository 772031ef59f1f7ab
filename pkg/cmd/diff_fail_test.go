package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

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
