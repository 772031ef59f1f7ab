package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// diffResult is what diff prints: diff's document for -o json|yaml; for
// -o unified a unified diff per object (errors and notes on errOut), for
// -o summary a line per object and the plan line.
type diffResult struct {
	diff.Document
	summary bool
	context int
	errOut  io.Writer
}

// WriteText writes the unified diff or the summary.
func (r diffResult) WriteText(w io.Writer, p *ui.Painter) error {
	if r.summary {
		return writeSummary(w, p, r.Document)
	}
	return writeUnified(w, r.errOut, p, r.Document, r.context)
}

// writeUnified writes a unified diff per created, changed or pruned object,
// with context lines of context. Errors and notes go to errOut, one line per
// object.
func writeUnified(out, errOut io.Writer, p *ui.Painter, d diff.Document, context int) error {
	paint := func(s ui.Style, text string) string { return p.Paint(text, s) }
	var b strings.Builder
	for _, o := range d.Objects {
		switch o.Action {
		case diff.Failed:
			fmt.Fprintf(errOut, "error: %s: %s\n", safetext.Line(o.Ref.String()), safetext.Line(o.Error))
			continue
		case diff.Unchanged:
			continue
		}
		ref := safetext.Line(o.Ref.String())
		if o.Note != "" {
			fmt.Fprintf(errOut, "note: %s: %s\n", ref, safetext.Line(o.Note))
		}
		b.WriteString(paint(ui.Bold, "--- live/"+ref) + "\n")
		b.WriteString(paint(ui.Bold, "+++ merged/"+ref) + "\n")
		for _, h := range diff.Hunks(o.Before, o.After, context) {
			b.WriteString(paint(ui.Accent, fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines)) + "\n")
			for _, l := range h.Lines {
				text := string(l.Op) + safetext.Line(l.Text)
				switch l.Op {
				case '-':
					text = paint(ui.Bad, text)
				case '+':
					text = paint(ui.Good, text)
				}
				b.WriteString(text + "\n")
			}
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// writeSummary writes one line per object and the plan line.
func writeSummary(out io.Writer, p *ui.Painter, d diff.Document) error {
	t := &ui.Table{Headers: []string{"action", "object"}, Color: p.Colors()}
	style := map[diff.Action]ui.Style{diff.Created: ui.Good, diff.Changed: ui.Warn, diff.Pruned: ui.Bad, diff.Failed: ui.Bad, diff.Unchanged: ui.Faint}
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

// planLine is "Plan: 1 to create, 2 to change, 0 to prune, 997 unchanged."
func planLine(d diff.Document) string {
	c := d.Summary
	line := fmt.Sprintf("Plan: %d to create, %d to change, %d to prune, %d unchanged", c[diff.Created], c[diff.Changed], c[diff.Pruned], c[diff.Unchanged])
	if c[diff.Failed] > 0 {
		line += fmt.Sprintf(", %d failed", c[diff.Failed])
	}
	return line + "."
}
