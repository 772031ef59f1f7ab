package diff

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

func sampleResult() *Result {
	cm := func(color string) string {
		return "apiVersion: v1\ndata:\n  color: " + color + "\n  size: large\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: web\n"
	}
	return &Result{Objects: []Object{
		{Ref: kube.Ref{APIVersion: "v1", Kind: "Namespace", Name: "web"}, Action: Unchanged},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "new"}, Action: Created, ChangedPaths: []string{"."},
			After: "apiVersion: v1\ndata:\n  a: \"1\"\nkind: ConfigMap\nmetadata:\n  name: new\n  namespace: web\n"},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "settings"}, Action: Changed, ChangedPaths: []string{".data.color"},
			Before: cm("blue"), After: cm("green")},
		{Ref: kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "old"}, Action: Pruned, ChangedPaths: []string{"."},
			Before: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: old\n  namespace: web\n"},
		{Ref: kube.Ref{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "web", Name: "w"}, Action: Failed,
			Error: "the cluster has no kind Widget in example.com/v1 (is its CRD installed?)"},
	}}
}

func compare(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Compare(t, filepath.Join("testdata", name), got)
}

func TestUnifiedGolden(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := WriteUnified(&out, &errOut, sampleResult(), 3, false); err != nil {
		t.Fatal(err)
	}
	compare(t, "unified.golden", out.Bytes())
	compare(t, "unified-errors.golden", errOut.Bytes())
	out.Reset()
	if err := WriteUnified(&out, &errOut, sampleResult(), 0, false); err != nil {
		t.Fatal(err)
	}
	compare(t, "unified-context0.golden", out.Bytes())
}

func TestColorOnlyWhenAsked(t *testing.T) {
	var plain, colored, errOut bytes.Buffer
	_ = WriteUnified(&plain, &errOut, sampleResult(), 3, false)
	if bytes.Contains(plain.Bytes(), []byte("\x1b[")) {
		t.Error("escape codes in plain output")
	}
	_ = WriteUnified(&colored, &errOut, sampleResult(), 3, true)
	if plain.Len() == 0 || colored.Len() == 0 {
		t.Fatal("no output")
	}
	// Asked for colour, a buffer (not a terminal) gets it: the decision is
	// the caller's, made once, not lipgloss's look at the process's stdout.
	for _, want := range []string{"\x1b[1m--- live/", "\x1b[36m@@", "\x1b[31m-", "\x1b[32m+"} {
		if !bytes.Contains(colored.Bytes(), []byte(want)) {
			t.Errorf("coloured output lacks %q", want)
		}
	}
	// Without the escape codes the text is the same.
	if got := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAll(colored.Bytes(), nil); !bytes.Equal(got, plain.Bytes()) {
		t.Error("coloured output differs from plain output in more than colour")
	}
}

func TestSummaryGolden(t *testing.T) {
	var out bytes.Buffer
	if err := WriteSummary(&out, sampleResult(), false); err != nil {
		t.Fatal(err)
	}
	compare(t, "summary.golden", out.Bytes())
}

func TestJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(JSON(sampleResult()), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "result.golden.json", append(b, '\n'))
	r := sampleResult()
	if !r.Differs() || !r.Failed() {
		t.Error("the sample differs and has a failure")
	}
	if same := (&Result{Objects: []Object{{Action: Unchanged}}}); same.Differs() || same.Failed() {
		t.Error("an unchanged result differs")
	}
}
