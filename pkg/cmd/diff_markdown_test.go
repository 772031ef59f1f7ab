package cmd

import (
	"bytes"
	"fmt"
	"html"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/golden"
)

// markdown writes d as -o markdown does, within limit.
func markdown(t *testing.T, d diff.Document, limit int) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeMarkdown(&b, d, 3, limit, "kubectl gitlab-agent diff"); err != nil {
		t.Fatal(err)
	}
	if b.Len() > limit {
		t.Errorf("%d bytes, more than the limit %d", b.Len(), limit)
	}
	return b.String()
}

// configMap is a created ConfigMap of n data keys.
func configMap(name string, n int, value string) diff.Object {
	var data strings.Builder
	for i := range n {
		fmt.Fprintf(&data, "  key%03d: %s\n", i, value)
	}
	return diff.Object{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: name}, Action: diff.Created, ChangedPaths: []string{"."},
		After: "apiVersion: v1\ndata:\n" + data.String() + "kind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: web\n"}
}

func mdDoc(objs ...diff.Object) diff.Document { return diff.JSON(&diff.Result{Objects: objs}) }

// TestDiffMarkdownGolden: the sample (an object of every action) as a
// note, and the errors on stderr as with -o unified.
func TestDiffMarkdownGolden(t *testing.T) {
	out, errOut := printDiff(t, "markdown", 3, true) // colour asked: a note has none
	golden.Compare(t, filepath.Join("testdata", "diff", "markdown.golden"), out)
	if bytes.Contains(out, []byte("\x1b[")) {
		t.Error("escape codes in the markdown")
	}
	if !bytes.Contains(errOut, []byte("error: example.com/v1/Widget/web/w: the cluster has no kind Widget")) {
		t.Errorf("stderr: %s", errOut)
	}
	// The same hunks as -o unified.
	unified, _ := printDiff(t, "unified", 3, false)
	for _, line := range strings.Split(strings.TrimSpace(string(unified)), "\n") {
		if !strings.Contains(string(out), "\n"+line+"\n") {
			t.Errorf("-o unified's line %q is not in the markdown", line)
		}
	}
}

// TestDiffMarkdownNoDifferences: one line, no table.
func TestDiffMarkdownNoDifferences(t *testing.T) {
	o := sampleDiff().Objects[0]
	if got, want := markdown(t, mdDoc(o), noteLimit), "**No differences**: 0 to create, 0 to change, 0 to prune, 1 unchanged.\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestDiffMarkdownCollapsed: a diff of more than 50 lines is folded in
// <details>; one of 50 is not.
func TestDiffMarkdownCollapsed(t *testing.T) {
	// 2 header lines, @@, 7 lines of the object besides its data.
	short, long := configMap("short", 41, "x"), configMap("long", 42, "x")
	if n := len(objectDiff(short, 3, plainPaint)); n != 50 {
		t.Fatalf("short has %d lines, want 50", n)
	}
	out := markdown(t, mdDoc(short, long), noteLimit)
	golden.Compare(t, filepath.Join("testdata", "diff", "markdown-collapsed.golden"), []byte(out))
	if strings.Count(out, "<details>") != 1 || !strings.Contains(out, "<details><summary>v1/ConfigMap/web/long (created), 51 lines</summary>\n\n```diff\n") ||
		!strings.Contains(out, "**v1/ConfigMap/web/short (created)**\n\n```diff\n") || !strings.HasSuffix(out, "```\n\n</details>\n") {
		t.Errorf("folding:\n%s", out)
	}
}

// TestDiffMarkdownCut: past the limit, the objects that do not fit are
// left out, counted in the last line.
func TestDiffMarkdownCut(t *testing.T) {
	objs := []diff.Object{configMap("a", 5, "x"), configMap("b", 5, "x"), configMap("c", 100, "x"), configMap("d", 5, "x")}
	full := markdown(t, mdDoc(objs...), noteLimit)
	if strings.Contains(full, "left out") {
		t.Fatalf("cut within the limit:\n%s", full)
	}
	// Room for a and b, not c: c and d are left out, though d would fit.
	limit := strings.Index(full, "<details>") + 400
	out := markdown(t, mdDoc(objs...), limit)
	golden.Compare(t, filepath.Join("testdata", "diff", "markdown-cut.golden"), []byte(out))
	lines := len(objectDiff(objs[2], 3, plainPaint)) + len(objectDiff(objs[3], 3, plainPaint))
	want := fmt.Sprintf("\n**2 objects (%d diff lines) left out** to keep this note within GitLab's %d characters: run `kubectl gitlab-agent diff ... -o unified` to see every object.\n", lines, limit)
	if !strings.HasSuffix(out, want) || !strings.Contains(out, "web/b (created)**") || strings.Contains(out, "web/d (created)") {
		t.Errorf("cut at %d:\n%s\nwant it to end with %q", limit, out, want)
	}
	// The table lists every object even when their diffs are cut.
	for _, name := range []string{"a", "b", "c", "d"} {
		if !strings.Contains(out, "| v1/ConfigMap/web/"+name+" | created | new object |") {
			t.Errorf("%s not in the table", name)
		}
	}

	// GitLab's own limit, with 400 objects of 5,000 bytes.
	objs = nil
	for i := range 400 {
		objs = append(objs, configMap(fmt.Sprintf("cm%03d", i), 100, strings.Repeat("v", 40)))
	}
	out = markdown(t, mdDoc(objs...), noteLimit)
	m := regexp.MustCompile(`\*\*(\d+) objects \((\d+) diff lines\) left out\*\* .* 1000000 characters`).FindStringSubmatch(out)
	shown := strings.Count(out, "<details>")
	if m == nil || len(out) < noteLimit-10_000 || fmt.Sprint(400-shown) != m[1] || fmt.Sprint((400-shown)*len(objectDiff(objs[0], 3, plainPaint))) != m[2] {
		t.Errorf("%d bytes, %d objects shown, last line %q", len(out), shown, out[max(0, len(out)-300):])
	}
}

// TestDiffMarkdownHostile: names, notes, errors and values from the
// cluster or the manifests can neither leave their fenced block or table
// cell, nor mention anyone, link, or add HTML.
func TestDiffMarkdownHostile(t *testing.T) {
	evil := "@all <script>alert(1)</script> [click](https://evil.example) ![x](https://evil.example/p.png) #1 !2 ~bug | `tick` &amp; \\| *b* _i_"
	value := func(v string) string {
		return "apiVersion: v1\ndata:\n  a: " + v + "\n  b: |\n    ```\n    ````` \n    ~~~~\n    </details>\n    <script>alert(1)</script>\n    @all please look\n    /close\nkind: ConfigMap\nmetadata:\n  name: x\n"
	}
	long := configMap("long", 60, "</details> ``` @all <script>")
	long.Ref.Name = "long-</summary></details><script>@all"
	objs := []diff.Object{
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "x</td>@all\n/close"}, Action: diff.Changed, ChangedPaths: []string{".data.a"},
			Before: "apiVersion: v1\ndata:\n  a: old\nkind: ConfigMap\nmetadata:\n  name: x\n", After: value("\"" + evil + "\""), Note: evil + "\n/close\n\n# heading"},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "y"}, Action: diff.Failed, Error: evil + "\r\n</details>"},
		{Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "z"}, Action: diff.Skipped, Note: evil},
		long,
	}
	out := markdown(t, mdDoc(objs...), noteLimit)
	golden.Compare(t, filepath.Join("testdata", "diff", "markdown-hostile.golden"), []byte(out))

	blocks, text := fenced(t, out)
	if len(blocks) != 2 {
		t.Fatalf("%d fenced blocks, want 2 (the changed and the long object):\n%s", len(blocks), out)
	}
	// Every diff line is in its block: the hostile lines did not close it.
	for i, o := range []diff.Object{objs[0], objs[3]} {
		if want := objectDiff(o, 3, plainPaint); strings.Join(blocks[i], "\n") != strings.Join(want, "\n") {
			t.Errorf("block %d:\n%s\nwant:\n%s", i, strings.Join(blocks[i], "\n"), strings.Join(want, "\n"))
		}
	}
	// Outside the blocks: our markup only (the plan, the table's pipes,
	// the titles, <details>), and in what comes from the cluster no HTML,
	// mention, link, image, reference, code span or escape GitLab would act
	// on, and no line a quick action or a heading starts.
	// Markdown and HTML syntax, in the text written.
	syntax := regexp.MustCompile("[<>\\[\\]`|\\\\*_]")
	// GitLab's references, in the text rendered (where &#64; is @ again):
	// @mention, #issue, !MR, ~label.
	reference := regexp.MustCompile(`@[A-Za-z0-9_]|[#!][0-9]|~[a-z]`)
	var content []string
	for _, line := range text {
		switch {
		case line == "" || line == "</details>" || line == "| object | action | changes |" || line == "|---|---|---|" || strings.HasPrefix(line, "**Plan: "):
			continue
		case strings.HasPrefix(line, "| ") && strings.HasSuffix(line, " |"):
			cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |"), " | ")
			if len(cells) != 3 {
				t.Errorf("a row of %d cells: %q", len(cells), line)
			}
			content = append(content, cells...)
		case strings.HasPrefix(line, "<details><summary>") && strings.HasSuffix(line, "</summary>"):
			content = append(content, strings.TrimSuffix(strings.TrimPrefix(line, "<details><summary>"), "</summary>"))
		case strings.HasPrefix(line, "**") && strings.HasSuffix(line, ")**"):
			content = append(content, strings.TrimSuffix(strings.TrimPrefix(line, "**"), "**"))
		default:
			t.Errorf("a line that is not ours: %q", line)
		}
	}
	for _, c := range content {
		if syntax.MatchString(c) {
			t.Errorf("markup in %q", c)
		}
		if rendered := html.UnescapeString(c); reference.MatchString(rendered) {
			t.Errorf("a reference in %q, rendered %q", c, rendered)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "/") {
			t.Errorf("a line a quick action reads: %q", line)
		}
	}
	if n, m := strings.Count(out, "<details>"), strings.Count(strings.Join(text, "\n"), "</details>"); n != 1 || m != 1 {
		t.Errorf("%d <details> and %d </details> outside fenced blocks, want 1 and 1", n, m)
	}
	// Every line of the note from the cluster is one line of it: no
	// CR, no line that is not ours.
	if strings.Contains(out, "\r") {
		t.Error("a carriage return in the note")
	}
}

// fenced splits a note into its fenced code blocks' lines and the other
// lines, by CommonMark's rules: an opening fence is 3 or more backticks or
// tildes after at most 3 spaces; the block ends at a line of at most 3
// spaces, then at least as many of the same character, then only spaces.
func fenced(t *testing.T, md string) (blocks [][]string, text []string) {
	t.Helper()
	open := regexp.MustCompile("^ {0,3}(`{3,}|~{3,})(.*)$")
	var fence string
	var cur []string
	for _, line := range strings.Split(strings.TrimSuffix(md, "\n"), "\n") {
		if fence == "" {
			if m := open.FindStringSubmatch(line); m != nil && !(m[1][0] == '`' && strings.Contains(m[2], "`")) {
				fence, cur = m[1], []string{}
				continue
			}
			text = append(text, line)
			continue
		}
		trimmed := strings.TrimLeft(line, " ")
		if len(line)-len(trimmed) <= 3 && strings.TrimRight(strings.TrimLeft(trimmed, fence[:1]), " ") == "" &&
			len(strings.TrimRight(trimmed, " ")) >= len(fence) {
			blocks, fence = append(blocks, cur), ""
			continue
		}
		cur = append(cur, line)
	}
	if fence != "" {
		t.Errorf("a fenced block is never closed")
	}
	return blocks, text
}

func plainPaint(_ ui.Style, s string) string { return s }

// TestDiffMarkdownCommand: diff -o markdown against the cluster exits 1
// on a difference, 0 on none, and prints the note; apps diff takes it too.
func TestDiffMarkdownCommand(t *testing.T) {
	c := newDiffCluster(t)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: '1'}\n"
	live(t, c, cm)
	f := writeFile(t, strings.Replace(cm, "'1'", "'@all </details>'", 1))
	code, out, errOut := runDiff(t, c, "", "-f", f, "-o", "markdown")
	want := "**Plan: 0 to create, 1 to change, 0 to prune, 0 unchanged.**\n\n" +
		"| object | action | changes |\n|---|---|---|\n| v1/ConfigMap/team/web | changed | 1 changed path |\n\n" +
		"**v1/ConfigMap/team/web (changed)**\n\n```diff\n--- live/v1/ConfigMap/team/web\n+++ merged/v1/ConfigMap/team/web\n@@ -1,6 +1,6 @@\n apiVersion: v1\n data:\n-  a: \"1\"\n+  a: '@all </details>'\n kind: ConfigMap\n metadata:\n   name: web\n```\n"
	if code != 1 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	same := writeFile(t, cm)
	if code, out, errOut := runDiff(t, c, "", "-f", same, "-o", "markdown"); code != 0 || out != "**No differences**: 0 to create, 0 to change, 0 to prune, 1 unchanged.\n" {
		t.Errorf("the same: exit %d, %q, %q", code, out, errOut)
	}
	// An object that cannot be compared: 2, in the table and on stderr.
	bad := writeFile(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
	if code, out, errOut := runDiff(t, c, "", "-f", bad, "-o", "markdown"); code != 2 || !strings.Contains(out, "| example.com/v1/Widget/w | error | the cluster has no kind Widget") ||
		!strings.Contains(errOut, "error: example.com/v1/Widget/w: the cluster has no kind Widget") {
		t.Errorf("an error: exit %d\n%s\n%s", code, out, errOut)
	}
	var o, e bytes.Buffer
	if code := Execute(fakeFactory{cluster: c}, []string{"apps", "diff", "--help"}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &o, ErrOut: &e}); code != 0 || !strings.Contains(o.String(), "markdown") {
		t.Errorf("apps diff --help: exit %d\n%s%s", code, o.String(), e.String())
	}
}
