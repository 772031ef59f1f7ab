package ui

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
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
)

// C is a plain cell.
func C(text string) Cell { return Cell{Text: text} }

// S is a styled cell.
func S(text string, s Style) Cell { return Cell{Text: text, Style: s} }

var styles = map[Style]lipgloss.Style{
	Good:  lipgloss.NewStyle().Foreground(lipgloss.Color("2")),
	Warn:  lipgloss.NewStyle().Foreground(lipgloss.Color("3")),
	Bad:   lipgloss.NewStyle().Foreground(lipgloss.Color("1")),
	Faint: lipgloss.NewStyle().Faint(true),
}

var headerStyle = lipgloss.NewStyle().Bold(true)

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
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if n := utf8.RuneCountInString(c.Text); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b strings.Builder
	line := func(cells []Cell, header bool) {
		for i, c := range cells {
			text := c.Text
			pad := ""
			if i < len(cells)-1 && i < len(widths) {
				pad = strings.Repeat(" ", max(widths[i]-utf8.RuneCountInString(text), 0)+3)
			}
			if t.Color {
				switch {
				case header:
					text = headerStyle.Render(text)
				case c.Style != Plain:
					text = styles[c.Style].Render(text)
				}
			}
			b.WriteString(text + pad)
		}
		b.WriteString("\n")
	}
	hdr := make([]Cell, len(t.Headers))
	for i, h := range t.Headers {
		hdr[i] = C(strings.ToUpper(h))
	}
	line(hdr, true)
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

// Fprintln writes a line of text, for the commands' plain messages.
func Fprintln(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}

// Paint styles text as a cell of style s would be.
func (t *Table) Paint(text string, s Style) string {
	if st, ok := styles[s]; ok {
		return st.Render(text)
	}
	return text
}
