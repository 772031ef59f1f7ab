package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	cases := map[string]string{
		"plain name-1":              "plain name-1",
		"clear\x1b[2Jscreen":        `clear\x1b[2Jscreen`,
		"title\x1b]0;pwned\x07":     `title\x1b]0;pwned\x07`,
		"over\rwrite":               `over\rwrite`,
		"two\nlines\ttab":           `two\nlines\ttab`,
		"c1\u009b31m":               `c1\u009b31m`,
		"bidi\u202etxt.exe":         `bidi\u202etxt.exe`,
		"bad\xffutf8":               `bad\xffutf8`,
		"del\x7f":                   `del\x7f`,
		`already \x1b escaped`:      `already \x1b escaped`,
		"ünïcödé ok — 日本":           "ünïcödé ok — 日本",
		"separator\u2028after":      `separator\u2028after`,
		"isolate\u2066x\u2069":      `isolate\u2066x\u2069`,
		"":                          "",
		"\x00nul":                   `\x00nul`,
		"lone continuation \x80 x":  `lone continuation \x80 x`,
		"truncated rune \xe6\x97 x": `truncated rune \xe6\x97 x`,
	}
	for in, want := range cases {
		if got := Line(in); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
		if got := Line(Line(in)); got != Line(in) {
			t.Errorf("Line is not stable on %q: %q", in, got)
		}
	}
}

func TestTextKeepsLines(t *testing.T) {
	if got := Text("a\n\tb\x1b[31m\r"); got != "a\n\tb\\x1b[31m\\r" {
		t.Fatalf("%q", got)
	}
	if got := Text("crlf\r\nline\rover"); got != "crlf\r\nline\\rover" {
		t.Fatalf("%q", got)
	}
}

func TestClipAndRedact(t *testing.T) {
	if got := Clip(strings.Repeat("é", 500), 10); utf8.RuneCountInString(got) != 10 || !strings.HasSuffix(got, "…") {
		t.Fatalf("%q", got)
	}
	if got := Clip("short", 10); got != "short" {
		t.Fatal(got)
	}
	secret := "glpat-0123456789abcdef"
	got := Remote("token "+secret+" echoed \x1b[2J"+strings.Repeat("x", 1000), 80, secret, "")
	if strings.Contains(got, secret) || strings.ContainsRune(got, 0x1b) || utf8.RuneCountInString(got) > 90 {
		t.Fatalf("%q", got)
	}
	if Redact("a short abc", "abc") != "a short abc" {
		t.Error("a 3-byte secret was redacted")
	}
}

func FuzzLine(f *testing.F) {
	f.Add("x\x1b[2J\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Line(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || dangerous(r) {
				t.Fatalf("Line(%q) kept %U", s, r)
			}
		}
	})
}
