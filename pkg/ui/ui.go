// Package ui decides how results look: colour on a terminal, plain text when
// piped or when NO_COLOR is set, and stable JSON or YAML for scripts.
package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// IsTerminal reports whether a stream (a reader or a writer) is an
// interactive terminal.
func IsTerminal(stream any) bool {
	f, ok := stream.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// ColorEnabled reports whether output to w should be coloured: only on a
// terminal, and never when the user opted out with --no-color, NO_COLOR
// (https://no-color.org: any non-empty value) or TERM=dumb.
func ColorEnabled(w io.Writer, noColorFlag bool) bool {
	if noColorFlag || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return IsTerminal(w)
}

// PrintJSON writes v as indented JSON followed by a newline. Characters a
// terminal may act on that encoding/json leaves raw (DEL, C1 controls,
// bidirectional overrides) are written as \u escapes: the same JSON value.
func PrintJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	b = append(escapeJSON(b), '\n')
	_, err = w.Write(b)
	return err
}

// escapeJSON escapes, inside JSON text, the runes safetext treats as unsafe
// that encoding/json passes through; they can only be inside strings.
func escapeJSON(b []byte) []byte {
	clean := true
	for _, c := range b {
		if c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || (size > 1 && safetext.Line(string(r)) != string(r)) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+size])
		}
		i += size
	}
	return out.Bytes()
}

// PrintYAML writes v as YAML, using its JSON field names.
func PrintYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding YAML: %w", err)
	}
	_, err = w.Write(b)
	return err
}
