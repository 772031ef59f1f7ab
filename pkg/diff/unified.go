package diff

import (
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// Line is one line of a hunk: ' ' context, '-' removed, '+' added.
type Line struct {
	Op   byte
	Text string
}

// Hunk is a unified-diff hunk.
type Hunk struct {
	OldStart, OldLines, NewStart, NewLines int
	Lines                                  []Line
}

// lineDiff is the line-level edit script from a to b, from go-diff's line
// mode (its patch text is URL-escaped and not a unified diff, so hunks are
// built here).
func lineDiff(a, b string) []Line {
	dmp := diffmatchpatch.New()
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var out []Line
	for _, d := range diffs {
		op := byte(' ')
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = '-'
		case diffmatchpatch.DiffInsert:
			op = '+'
		}
		text := strings.TrimSuffix(d.Text, "\n")
		for _, l := range strings.Split(text, "\n") {
			out = append(out, Line{Op: op, Text: l})
		}
	}
	return out
}

// Hunks splits the line diff of a and b into hunks with n lines of context.
func Hunks(a, b string, n int) []Hunk {
	if a == b {
		return nil
	}
	lines := lineDiff(a, b)
	if a == "" {
		lines = dropEmpty(lines, '-')
	}
	if b == "" {
		lines = dropEmpty(lines, '+')
	}
	var hunks []Hunk
	oldNo, newNo := 1, 1
	// positions of each line in the old and new texts
	type pos struct{ old, new int }
	at := make([]pos, len(lines))
	for i, l := range lines {
		at[i] = pos{oldNo, newNo}
		if l.Op != '+' {
			oldNo++
		}
		if l.Op != '-' {
			newNo++
		}
	}
	i := 0
	for i < len(lines) {
		for i < len(lines) && lines[i].Op == ' ' {
			i++
		}
		if i == len(lines) {
			break
		}
		start := max(0, i-n)
		end := i
		for {
			for end < len(lines) && lines[end].Op != ' ' {
				end++
			}
			next := end
			for next < len(lines) && lines[next].Op == ' ' {
				next++
			}
			if next < len(lines) && next-end <= 2*n {
				end = next
				continue
			}
			end = min(len(lines), end+n)
			break
		}
		h := Hunk{OldStart: at[start].old, NewStart: at[start].new, Lines: lines[start:end]}
		for _, l := range h.Lines {
			if l.Op != '+' {
				h.OldLines++
			}
			if l.Op != '-' {
				h.NewLines++
			}
		}
		// An empty side starts at line 0, as diff -u writes it.
		if h.OldLines == 0 {
			h.OldStart--
		}
		if h.NewLines == 0 {
			h.NewStart--
		}
		hunks = append(hunks, h)
		i = end
	}
	return hunks
}

// dropEmpty removes the single empty line an empty text contributes.
func dropEmpty(lines []Line, op byte) []Line {
	out := lines[:0]
	for _, l := range lines {
		if l.Op == op && l.Text == "" {
			continue
		}
		out = append(out, l)
	}
	return out
}
