package cmd

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// diffResult is what diff prints: diff's document for -o json|yaml; for
// -o unified a unified diff per object (errors and notes on errOut), for
// -o summary a line per object and the plan line, for -o markdown a
// merge-request note (errors on errOut too).
type diffResult struct {
	diff.Document
	summary  bool
	markdown bool
	// command is the command that printed it, for -o markdown's line on
	// what was left out ("kubectl gitlab-agent diff").
	command string
	context int
	errOut  io.Writer
}

// newDiffResult is the result of a diff printed with -o format and -U
// context by command.
func newDiffResult(d diff.Document, format string, context int, command string, errOut io.Writer) diffResult {
	return diffResult{Document: d, summary: format == "summary", markdown: format == "markdown", command: command, context: context, errOut: errOut}
}

// WriteText writes the unified diff, the summary or the markdown.
func (r diffResult) WriteText(w io.Writer, p *ui.Painter) error {
	switch {
	case r.summary:
		return writeSummary(w, p, r.Document)
	case r.markdown:
		writeFolded(r.errOut, "error", r.Objects, func(o diff.Object) string { return o.Error })
		return writeMarkdown(w, r.Document, r.context, noteLimit, r.command)
	}
	return writeUnified(w, r.errOut, p, r.Document, r.context)
}

// writeUnified writes a unified diff per created, changed or pruned object,
// with context lines of context. Errors, skipped objects (with why) and
// notes go to errOut, one line for the objects that share one
// (writeFolded).
func writeUnified(out, errOut io.Writer, p *ui.Painter, d diff.Document, context int) error {
	paint := func(s ui.Style, text string) string { return p.Paint(text, s) }
	writeFolded(errOut, "error", d.Objects, func(o diff.Object) string { return o.Error })
	writeFolded(errOut, "skipped", d.Objects, func(o diff.Object) string {
		if o.Action != diff.Skipped {
			return ""
		}
		return o.Note
	})
	writeFolded(errOut, "note", d.Objects, func(o diff.Object) string {
		if !hasDiff(o) {
			return ""
		}
		return o.Note
	})
	var b strings.Builder
	for _, o := range d.Objects {
		if hasDiff(o) {
			for _, line := range objectDiff(o, context, paint) {
				b.WriteString(line + "\n")
			}
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// hasDiff reports whether o has a unified diff to print: it is created,
// changed or pruned.
func hasDiff(o diff.Object) bool {
	return o.Action != diff.Failed && o.Action != diff.Unchanged && o.Action != diff.Skipped
}

// objectDiff is o's unified diff, its --- and +++ lines first, a line
// each, without newlines: every line of text from the cluster or the
// manifests is one inert line (safetext.Line). paint colours a piece.
func objectDiff(o diff.Object, context int, paint func(ui.Style, string) string) []string {
	ref := safetext.Line(o.Ref.String())
	lines := []string{paint(ui.Bold, "--- live/"+ref), paint(ui.Bold, "+++ merged/"+ref)}
	for _, h := range diff.Hunks(o.Before, o.After, context) {
		lines = append(lines, paint(ui.Accent, fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines)))
		for _, l := range h.Lines {
			text := string(l.Op) + safetext.Line(l.Text)
			switch l.Op {
			case '-':
				text = paint(ui.Bad, text)
			case '+':
				text = paint(ui.Good, text)
			}
			lines = append(lines, text)
		}
	}
	return lines
}

// writeFolded writes to w, for each message that text gives objects (""
// none), one line "KIND: REF: MESSAGE", or "KIND: REF and N more objects:
// MESSAGE" when objects share it: the same message but for each one's own
// name (a refusal the cluster repeats for every object is one line, not
// thousands).
func writeFolded(w io.Writer, kind string, objs []diff.Object, text func(diff.Object) string) {
	type group struct {
		first diff.Object
		msg   string
		n     int
	}
	var order []*group
	groups := map[string]*group{}
	for _, o := range objs {
		msg := text(o)
		if msg == "" {
			continue
		}
		key := strings.ReplaceAll(msg, strconv.Quote(o.Name), `"\x00"`)
		g := groups[key]
		if g == nil {
			g = &group{first: o, msg: msg}
			groups[key] = g
			order = append(order, g)
		}
		g.n++
	}
	for _, g := range order {
		ref := safetext.Line(g.first.Ref.String())
		if g.n > 1 {
			ref += fmt.Sprintf(" and %d more objects", g.n-1)
		}
		fmt.Fprintf(w, "%s: %s: %s\n", kind, ref, safetext.Line(g.msg))
	}
}

// writeSummary writes one line per object and the plan line.
func writeSummary(out io.Writer, p *ui.Painter, d diff.Document) error {
	t := &ui.Table{Headers: []string{"action", "object"}, Color: p.Colors()}
	style := map[diff.Action]ui.Style{diff.Created: ui.Good, diff.Changed: ui.Warn, diff.Pruned: ui.Bad, diff.Failed: ui.Bad, diff.Unchanged: ui.Faint, diff.Skipped: ui.Faint}
	for _, o := range d.Objects {
		obj := o.Ref.String()
		if o.Error != "" {
			obj += ": " + o.Error
		}
		if o.Note != "" {
			obj += " (" + o.Note + ")"
		}
		t.Rows = append(t.Rows, []ui.Cell{ui.S(string(o.Action), style[o.Action]), ui.C(obj)})
	}
	if err := t.Write(out); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, planLine(d))
	return err
}

// planLine is "Plan: 1 to create, 2 to change, 0 to prune, 997 unchanged.",
// with ", N skipped" and ", N failed" where there are any.
func planLine(d diff.Document) string {
	c := d.Summary
	line := fmt.Sprintf("Plan: %d to create, %d to change, %d to prune, %d unchanged", c[diff.Created], c[diff.Changed], c[diff.Pruned], c[diff.Unchanged])
	if c[diff.Skipped] > 0 {
		line += fmt.Sprintf(", %d skipped", c[diff.Skipped])
	}
	if c[diff.Failed] > 0 {
		line += fmt.Sprintf(", %d failed", c[diff.Failed])
	}
	return line + "."
}
