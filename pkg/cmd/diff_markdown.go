package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// noteLimit is the most characters a GitLab note may hold (a merge
// request note's body is refused past 1,000,000). Bytes are counted,
// never fewer than characters.
const noteLimit = 1_000_000

// collapseAfter is the number of lines past which an object's diff is
// folded in <details>.
const collapseAfter = 50

// cellClip bounds a note or an error in the table, in runes.
const cellClip = 500

// writeMarkdown writes d as a GitLab merge-request note: a heading with the
// plan, a table of every object not unchanged, then a fenced diff block of
// each created, changed or pruned object (the hunks of -o unified, with
// context lines of context), folded in <details> past collapseAfter lines.
// The note stays within limit bytes: when the next object does not fit, it
// and those after it are left out, and the last line says how many and how
// to see them (command, e.g. "kubectl gitlab-agent diff").
//
// Everything from the cluster or the manifests is hostile. In the heading,
// the table and <summary> it is escaped by mdText; in a fenced block it is
// literal, and the fence is longer than any run of backticks in the block,
// so no line can close it (and a </details> in it is code, not HTML).
func writeMarkdown(w io.Writer, d diff.Document, context, limit int, command string) error {
	var b strings.Builder
	// The last line, when objects are left out, is at most this long.
	const reserve = 400
	budget := limit - reserve

	if !d.Differs && d.Summary[diff.Failed] == 0 && d.Summary[diff.Skipped] == 0 {
		_, err := fmt.Fprintf(w, "**No differences**: %s\n", strings.TrimPrefix(planLine(d), "Plan: "))
		return err
	}
	b.WriteString("**" + planLine(d) + "**\n\n")

	var listed []diff.Object
	for _, o := range d.Objects {
		if o.Action != diff.Unchanged {
			listed = append(listed, o)
		}
	}
	// leftOut is how many objects and diff lines are not in the note.
	leftObjects, leftLines := 0, 0
	diffs := make([][]string, len(listed))
	plain := func(_ ui.Style, s string) string { return s }
	for i, o := range listed {
		if hasDiff(o) {
			diffs[i] = objectDiff(o, context, plain)
		}
	}
	leave := func(from int, rows bool) {
		for i := from; i < len(listed); i++ {
			if diffs[i] != nil || rows {
				leftObjects++
				leftLines += len(diffs[i])
			}
		}
	}

	cut := false
	b.WriteString("| object | action | changes |\n|---|---|---|\n")
	for i, o := range listed {
		row := "| " + mdText(o.Ref.String()) + " | " + string(o.Action) + " | " + changesCell(o) + " |\n"
		if b.Len()+len(row) > budget {
			leave(i, true)
			cut = true
			break
		}
		b.WriteString(row)
	}

	if !cut {
		for i, o := range listed {
			if diffs[i] == nil {
				continue
			}
			block := mdDiffBlock(o, diffs[i])
			if b.Len()+len(block) > budget {
				leave(i, false)
				break
			}
			b.WriteString(block)
		}
	}
	if leftObjects > 0 {
		fmt.Fprintf(&b, "\n**%d %s (%d diff %s) left out** to keep this note within GitLab's %d characters: run `%s ... -o unified` to see every object.\n",
			leftObjects, plural(leftObjects, "object", "objects"), leftLines, plural(leftLines, "line", "lines"), limit, command)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// changesCell is the table's third column: what changed, or the note or
// error, escaped and clipped.
func changesCell(o diff.Object) string {
	var parts []string
	switch o.Action {
	case diff.Created:
		parts = append(parts, "new object")
	case diff.Pruned:
		parts = append(parts, "deleted")
	case diff.Changed:
		n := len(o.ChangedPaths)
		parts = append(parts, fmt.Sprintf("%d changed %s", n, plural(n, "path", "paths")))
	}
	if o.Error != "" {
		parts = append(parts, mdText(safetext.Clip(o.Error, cellClip)))
	}
	if o.Note != "" {
		parts = append(parts, mdText(safetext.Clip(o.Note, cellClip)))
	}
	return strings.Join(parts, "; ")
}

// mdDiffBlock is o's diff as a fenced block, titled by the object, folded
// in <details> when it has more than collapseAfter lines.
func mdDiffBlock(o diff.Object, lines []string) string {
	fence := strings.Repeat("`", max(3, longestRun(lines, '`')+1))
	title := mdText(o.Ref.String()) + " (" + string(o.Action) + ")"
	var b strings.Builder
	if len(lines) > collapseAfter {
		// An HTML block: its line is raw HTML, ended by the blank line, so
		// the fenced block after it is Markdown again.
		fmt.Fprintf(&b, "\n<details><summary>%s, %d lines</summary>\n\n", title, len(lines))
	} else {
		fmt.Fprintf(&b, "\n**%s**\n\n", title)
	}
	b.WriteString(fence + "diff\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString(fence + "\n")
	if len(lines) > collapseAfter {
		b.WriteString("\n</details>\n")
	}
	return b.String()
}

// longestRun is the longest run of c in any of lines: a fence of more
// backticks than that cannot be closed by a line of the block (CommonMark:
// a closing fence has at least as many as the opening one).
func longestRun(lines []string, c byte) int {
	longest := 0
	for _, l := range lines {
		n := 0
		for i := 0; i < len(l); i++ {
			if l[i] != c {
				n = 0
				continue
			}
			n++
			longest = max(longest, n)
		}
	}
	return longest
}

// mdText makes text from the cluster or the manifests inert in a table
// cell, a heading or a <summary> of a GitLab note: one line (safetext.Line
// writes newlines, control and bidirectional characters as visible
// escapes); HTML, table, code, link and emphasis characters as character
// references; and a zero-width space after each of GitLab's reference
// characters (@user, #issue, !MR, ~label, %milestone, $snippet, &epic),
// because GitLab finds references in the rendered text, where a character
// reference such as &#64; is "@" again: only a character between the
// sigil and the name stops @all from notifying everyone.
func mdText(s string) string {
	s = safetext.Line(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'', '|', '`', '[', ']', '(', ')', '\\', '*', '_', '~', '@', '#', '!', '$', '%':
			fmt.Fprintf(&b, "&#%d;", r)
		default:
			b.WriteRune(r)
		}
		switch r {
		case '@', '#', '!', '~', '%', '$', '&':
			b.WriteString("&#8203;")
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
