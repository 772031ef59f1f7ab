package diff

import (
	"bytes"
	"context"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		"diff -u -N":                 {"diff", "-u", "-N"},
		"  meld\t":                   {"meld"},
		`'a b' "c\"d\x" e\ f ''`:     {"a b", `c"d\x`, "e f", ""},
		`dyff between --omit-header`: {"dyff", "between", "--omit-header"},
		"":                           nil,
	} {
		got, err := splitWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`"open`, `'open`} {
		if _, err := splitWords(in); err == nil {
			t.Errorf("splitWords(%q): no error", in)
		}
	}
}

func TestFileName(t *testing.T) {
	for ref, want := range map[kube.Ref]string{
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "web"}:        "apps.v1.Deployment.ns.web",
		{APIVersion: "v1", Kind: "Namespace", Name: "ns"}:                                "v1.Namespace..ns",
		{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "a:b/c"}: "rbac.authorization.k8s.io.v1.ClusterRole..a_b_c",
	} {
		if got := fileName(Object{Ref: ref}); got != want {
			t.Errorf("fileName(%v) = %q, want %q", ref, got, want)
		}
	}
}

// TestRunExternal: the program gets a LIVE and a MERGED directory holding
// the objects that differ; its exit code is the result.
func TestRunExternal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs sh")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	cm := func(name string) kube.Ref {
		return kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: name}
	}
	r := &Result{Objects: []Object{
		{Ref: cm("changed"), Action: Changed, Before: "a: 1\n", After: "a: 2\n"},
		{Ref: cm("created"), Action: Created, After: "b: 1\n"},
		{Ref: cm("pruned"), Action: Pruned, Before: "c: 1\n"},
		{Ref: cm("same"), Action: Unchanged},
		{Ref: cm("failed"), Action: Failed, Error: "boom"},
	}}
	var out, errOut bytes.Buffer
	code, err := RunExternal(context.Background(), `sh -c 'cd "$0" && grep -H . *; cd "$1" && grep -H . *; exit 1'`, r, &out, &errOut)
	want := "v1.ConfigMap.ns.changed:a: 1\nv1.ConfigMap.ns.pruned:c: 1\nv1.ConfigMap.ns.changed:a: 2\nv1.ConfigMap.ns.created:b: 1\n"
	if code != 1 || err != nil || out.String() != want {
		t.Errorf("exit %d, %v\n%s\nwant\n%s%s", code, err, out.String(), want, errOut.String())
	}
	if code, err := RunExternal(context.Background(), "true", r, &out, &errOut); code != 0 || err != nil {
		t.Errorf("true: %d %v", code, err)
	}
	for _, bad := range []string{"", "'open", "/nonexistent/differ"} {
		if code, err := RunExternal(context.Background(), bad, r, &out, &errOut); code != 2 || err == nil || !strings.Contains(err.Error(), ExternalDiffEnv) {
			t.Errorf("%q: exit %d, %v", bad, code, err)
		}
	}
}
