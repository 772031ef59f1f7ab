// Package safetext makes text from GitLab, KAS, the cluster or a local client
// safe to print: control characters (terminal escapes, carriage returns,
// bells), bidirectional overrides and invalid UTF-8 become visible escapes,
// long text is clipped, and known secrets are redacted.
package safetext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line returns s with every character a terminal would act on written as a
// visible escape (ESC as \x1b, CR as \r, U+202E as \u202e), so that s prints
// as exactly one line of inert text. Backslashes are left alone: an escaped
// text stays readable and escaping twice changes nothing more.
func Line(s string) string {
	if isInert(s, false) {
		return s
	}
	return escape(s, false)
}

// Text is Line that keeps newlines (LF and CRLF) and tabs, for multi-line
// remote text such as a file from a repository.
func Text(s string) string {
	if isInert(s, true) {
		return s
	}
	return escape(s, true)
}

// Clip shortens s to at most n runes, marking the cut with "…".
func Clip(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for j := range s {
		if count == n-1 {
			i = j
			break
		}
		count++
	}
	return s[:i] + "…"
}

// Redact replaces every occurrence of each secret in s. Empty and very short
// secrets are ignored: they would match ordinary text.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 8 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// Remote is the one call for a piece of remote text in a message: redacted,
// clipped to n runes and made a single inert line.
func Remote(s string, n int, secrets ...string) string {
	return Line(Clip(Redact(s, secrets...), n))
}

func isInert(s string, keepLines bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return false // checked rune by rune in escape
		}
		if c < 0x20 || c == 0x7f {
			if keepLines && (c == '\n' || c == '\t' || (c == '\r' && i+1 < len(s) && s[i+1] == '\n')) {
				continue
			}
			return false
		}
	}
	return true
}

func escape(s string, keepLines bool) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case keepLines && r == '\r' && i+1 < len(s) && s[i+1] == '\n':
			b.WriteByte('\r') // a CRLF line end stays one
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case dangerous(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// dangerous are the non-ASCII characters a terminal acts on or that change how
// the rest of a line reads: C1 controls (U+009B is CSI on some terminals),
// bidirectional embeddings, overrides and isolates ("trojan source"), and the
// line and paragraph separators.
func dangerous(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return false
}
