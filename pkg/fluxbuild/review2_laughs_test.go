package fluxbuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

const laughs = `apiVersion: v1
kind: ConfigMap
metadata: {name: lol}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// A few hundred bytes of nested YAML aliases in the repository: kustomize
// (Flux's generator, kyaml's DeAnchor) expands them all, taking every byte
// of memory of the machine running apps list. Extract refuses the file;
// a file with a few aliases passes.
func TestExtractRefusesABillionLaughs(t *testing.T) {
	privateTemp(t)
	for _, name := range []string{"p-main-1/apps/lol.yaml", "p-main-1/other/lol.txt"} {
		data := archive(t, dirEntry("p-main-1/"), file(name, laughs))
		_, _, err := Extract(context.Background(), bytes.NewReader(data), "tar.gz", "", Limits{})
		var ee *EntryError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "billion laughs") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	ok := "a: &x {k: v}\nb: *x\nc: [*x, *x]\n"
	data := archive(t, dirEntry("p-main-1/"), file("p-main-1/apps/ok.yaml", ok))
	dir, cleanup, err := Extract(context.Background(), bytes.NewReader(data), "tar.gz", "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if b, err := os.ReadFile(dir + "/apps/ok.yaml"); err != nil || string(b) != ok {
		t.Fatalf("ok.yaml: %q %v", b, err)
	}
}
