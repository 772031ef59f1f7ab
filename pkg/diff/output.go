package diff

import (
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// WriteUnified prints a unified diff per created, changed or pruned object,
// with context lines of context, coloured when color is set. Errors go to
// errOut, one line per object.
func WriteUnified(out, errOut io.Writer, r *Result, context int, color bool) error {
	p := ui.NewPainter(out, color)
	paint := func(s ui.Style, text string) string { return p.Paint(text, s) }
	var b strings.Builder
	for _, o := range r.Objects {
		switch o.Action {
		case Failed:
			fmt.Fprintf(errOut, "error: %s: %s\n", safetext.Line(o.Ref.String()), safetext.Line(o.Error))
			continue
		case Unchanged:
			continue
		}
		ref := safetext.Line(o.Ref.String())
		if o.Note != "" {
			fmt.Fprintf(errOut, "note: %s: %s\n", ref, safetext.Line(o.Note))
		}
		b.WriteString(paint(ui.Bold, "--- live/"+ref) + "\n")
		b.WriteString(paint(ui.Bold, "+++ merged/"+ref) + "\n")
		for _, h := range Hunks(o.Before, o.After, context) {
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

// WriteSummary prints one line per object and a plan line.
func WriteSummary(out io.Writer, r *Result, color bool) error {
	t := &ui.Table{Headers: []string{"action", "object"}, Color: color}
	style := map[Action]ui.Style{Created: ui.Good, Changed: ui.Warn, Pruned: ui.Bad, Failed: ui.Bad, Unchanged: ui.Faint}
	for _, o := range r.Objects {
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
	_, err := fmt.Fprintln(out, PlanLine(r))
	return err
}

// PlanLine is "Plan: 1 to create, 2 to change, 0 to prune, 997 unchanged."
func PlanLine(r *Result) string {
	c := r.Counts()
	line := fmt.Sprintf("Plan: %d to create, %d to change, %d to prune, %d unchanged", c[Created], c[Changed], c[Pruned], c[Unchanged])
	if c[Failed] > 0 {
		line += fmt.Sprintf(", %d failed", c[Failed])
	}
	return line + "."
}

// Document is the stable -o json form.
type Document struct {
	Differs bool           `json:"differs"`
	Summary map[Action]int `json:"summary"`
	Objects []Object       `json:"objects"`
}

// JSON returns the stable document for r.
func JSON(r *Result) Document {
	c := r.Counts()
	sum := map[Action]int{}
	for _, a := range []Action{Created, Changed, Unchanged, Pruned, Failed} {
		sum[a] = c[a]
	}
	objs := r.Objects
	if objs == nil {
		objs = []Object{}
	}
	return Document{Differs: r.Differs(), Summary: sum, Objects: objs}
}
