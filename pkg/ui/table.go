package ui

import (
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// Table prints rows in kubectl's column style: upper-case headers, columns
// padded with spaces. On a colour terminal the header is bold and cells can
// carry a style; piped, the same text comes out without escape codes.
type Table struct {
	Headers []string
	Rows    [][]Cell
	Color   bool
	// NoHeaders leaves the header row out (--no-headers); the columns are
	// as wide as their cells.
	NoHeaders bool
}

// Cell is one table cell with an optional style.
type Cell struct {
	Text  string
	Style Style
}

// Style is the meaning of a cell, which decides its colour.
type Style int

// Cell styles.
const (
	Plain Style = iota
	Good
	Warn
	Bad
	Faint
	Bold
	Accent
)

// C is a plain cell.
func C(text string) Cell { return Cell{Text: text} }

// S is a styled cell.
func S(text string, s Style) Cell { return Cell{Text: text, Style: s} }

// Write prints the table. Cell text often comes from GitLab or the cluster:
// control characters and the like are printed as visible escapes.
func (t *Table) Write(w io.Writer) error {
	rows := make([][]Cell, len(t.Rows))
	for i, r := range t.Rows {
		rows[i] = make([]Cell, len(r))
		for j, c := range r {
			rows[i][j] = Cell{Text: safetext.Line(c.Text), Style: c.Style}
		}
	}
	widths := make([]int, len(t.Headers))
	for i, h := range t.Headers {
		if !t.NoHeaders {
			widths[i] = utf8.RuneCountInString(h)
		}
	}
	for _, r := range rows {
		for i, c := range r {
			if n := utf8.RuneCountInString(c.Text); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b strings.Builder
	p := NewPainter(w, t.Color)
	line := func(cells []Cell, header bool) {
		for i, c := range cells {
			text := c.Text
			pad := ""
			if i < len(cells)-1 && i < len(widths) {
				pad = strings.Repeat(" ", max(widths[i]-utf8.RuneCountInString(text), 0)+3)
			}
			if header {
				text = p.Paint(text, Bold)
			} else {
				text = p.Paint(text, c.Style)
			}
			b.WriteString(text + pad)
		}
		b.WriteString("\n")
	}
	hdr := make([]Cell, len(t.Headers))
	for i, h := range t.Headers {
		hdr[i] = C(strings.ToUpper(h))
	}
	if !t.NoHeaders {
		line(hdr, true)
	}
	for _, r := range rows {
		line(r, false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Age is a kubectl-style age ("5m", "3d") of t before now; "<none>" for nil.
func Age(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return duration.HumanDuration(now.Sub(*t))
}

// Ago is Age with " ago", or "never" for nil.
func Ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return Age(t, now) + " ago"
}
