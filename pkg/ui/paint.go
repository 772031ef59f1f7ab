package ui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Painter styles text for one writer. Whether it colours is decided once,
// by the caller (see ColorEnabled), and bound to its own renderer: lipgloss's
// default renderer would look at the process's stdout instead, and colour
// (or not) whatever the writer is.
type Painter struct {
	styles map[Style]lipgloss.Style
	color  bool
}

// NewPainter paints for w: ANSI colours when color is set, plain text
// otherwise.
func NewPainter(w io.Writer, color bool) *Painter {
	r := lipgloss.NewRenderer(w)
	if color {
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return &Painter{color: color, styles: map[Style]lipgloss.Style{
		Good:   r.NewStyle().Foreground(lipgloss.Color("2")),
		Warn:   r.NewStyle().Foreground(lipgloss.Color("3")),
		Bad:    r.NewStyle().Foreground(lipgloss.Color("1")),
		Faint:  r.NewStyle().Faint(true),
		Bold:   r.NewStyle().Bold(true),
		Accent: r.NewStyle().Foreground(lipgloss.Color("6")),
	}}
}

// Colors reports whether p colours (a Table written with p's colours sets
// Color from it).
func (p *Painter) Colors() bool { return p.color }

// Paint styles text as s; plain text is returned as it is.
func (p *Painter) Paint(text string, s Style) string {
	if !p.color || s == Plain {
		return text
	}
	return p.styles[s].Render(text)
}
