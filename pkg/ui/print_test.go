package ui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// counted is a result with a text form and a document.
type counted struct {
	N    int `json:"count"`
	fail bool
}

func (c counted) WriteText(w io.Writer, p *Painter) error {
	fmt.Fprintf(w, "%s things\n", p.Paint(fmt.Sprint(c.N), Bold))
	if c.fail {
		return errors.New("broken")
	}
	return nil
}

// file is a result whose YAML is its own.
type file struct {
	Content string `json:"content"`
}

func (f file) WriteYAML(w io.Writer) error { _, err := io.WriteString(w, f.Content); return err }

func TestPrint(t *testing.T) {
	for _, c := range []struct {
		format string
		color  bool
		result any
		want   string
	}{
		{"json", false, counted{N: 2}, "{\n  \"count\": 2\n}\n"},
		{"yaml", false, counted{N: 2}, "count: 2\n"},
		{"table", false, counted{N: 2}, "2 things\n"},
		{"text", true, counted{N: 2}, "\x1b[1m2\x1b[0m things\n"},
		{"yaml", false, file{"a: 1 # as written\n"}, "a: 1 # as written\n"},
		{"json", false, file{"a: 1\n"}, "{\n  \"content\": \"a: 1\\n\"\n}\n"},
	} {
		var b bytes.Buffer
		if err := Print(&b, c.format, c.color, c.result); err != nil || b.String() != c.want {
			t.Errorf("Print(%s, %T) = %q, %v; want %q", c.format, c.result, b.String(), err, c.want)
		}
	}
	// Nothing is written unless the whole result was.
	var b bytes.Buffer
	if err := Print(&b, "table", false, counted{N: 1, fail: true}); err == nil || b.Len() != 0 {
		t.Errorf("a failing text form: %v, wrote %q", err, b.String())
	}
	if err := Print(&b, "table", false, file{}); err == nil || !strings.Contains(err.Error(), "no table form") || b.Len() != 0 {
		t.Errorf("a result with no text form: %v, wrote %q", err, b.String())
	}
}
