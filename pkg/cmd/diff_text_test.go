package cmd

import (
	"bytes"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"
)

// sampleDiff is a diff with one object of each action.
func sampleDiff() *diff.Result {
	cm := func(color string) string {
		return "apiVersion: v1\ndata:\n  color: " + color + "\n  size: large\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: web\n"
	}
	return &diff.Result{Objects: []diff.Object{
		{Ref: kube.Ref{APIVersion: "v1", Kind: "Namespace", Name: "web"}, Action: diff.Unchanged},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "new"}, Action: diff.Created, ChangedPaths: []string{"."},
			After: "apiVersion: v1\ndata:\n  a: \"1\"\nkind: ConfigMap\nmetadata:\n  name: new\n  namespace: web\n"},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "settings"}, Action: diff.Changed, ChangedPaths: []string{".data.color"},
			Before: cm("blue"), After: cm("green")},
		{Ref: kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "old"}, Action: diff.Pruned, ChangedPaths: []string{"."},
			Before: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: old\n  namespace: web\n"},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "manual"}, Action: diff.Skipped,
			Note: "annotation kustomize.toolkit.fluxcd.io/ssa: Ignore on the manifest"},
		{Ref: kube.Ref{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "web", Name: "w"}, Action: diff.Failed,
			Error: "the cluster has no kind Widget in example.com/v1 (is its CRD installed?)"},
	}}
}

// printDiff prints sampleDiff as diff does with -o format and -U context.
func printDiff(t *testing.T, format string, context int, color bool) (out, errOut []byte) {
	t.Helper()
	var o, e bytes.Buffer
	r := newDiffResult(diff.JSON(sampleDiff()), format, context, "kubectl gitlab-agent diff", &e)
	if err := ui.Print(&o, format, color, r); err != nil {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes()
}

func TestDiffUnifiedGolden(t *testing.T) {
	out, errOut := printDiff(t, "unified", 3, false)
	golden.Compare(t, filepath.Join("testdata", "diff", "unified.golden"), out)
	golden.Compare(t, filepath.Join("testdata", "diff", "unified-errors.golden"), errOut)
	out, _ = printDiff(t, "unified", 0, false)
	golden.Compare(t, filepath.Join("testdata", "diff", "unified-context0.golden"), out)
}

func TestDiffColorOnlyWhenAsked(t *testing.T) {
	plain, _ := printDiff(t, "unified", 3, false)
	if bytes.Contains(plain, []byte("\x1b[")) {
		t.Error("escape codes in plain output")
	}
	colored, _ := printDiff(t, "unified", 3, true)
	if len(plain) == 0 || len(colored) == 0 {
		t.Fatal("no output")
	}
	// Asked for colour, a buffer (not a terminal) gets it: the decision is
	// the caller's, made once, not lipgloss's look at the process's stdout.
	for _, want := range []string{"\x1b[1m--- live/", "\x1b[36m@@", "\x1b[31m-", "\x1b[32m+"} {
		if !bytes.Contains(colored, []byte(want)) {
			t.Errorf("coloured output lacks %q", want)
		}
	}
	// Without the escape codes the text is the same.
	if got := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAll(colored, nil); !bytes.Equal(got, plain) {
		t.Error("coloured output differs from plain output in more than colour")
	}
}

func TestDiffSummaryGolden(t *testing.T) {
	out, _ := printDiff(t, "summary", 3, false)
	golden.Compare(t, filepath.Join("testdata", "diff", "summary.golden"), out)
}

// TestDiffJSONGolden: diff -o json's document (docs/output.md), from the
// sample, which has an object of every action (TestDiffOutputs runs the
// command's -o json in-process against the fake cluster).
func TestDiffJSONGolden(t *testing.T) {
	out, _ := printDiff(t, "json", 3, false)
	golden.Compare(t, filepath.Join("testdata", "json", "diff.json"), out)
}
