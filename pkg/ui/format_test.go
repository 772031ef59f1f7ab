package ui

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// things is a List: its document holds the items under "things".
type things struct {
	Things []thing `json:"things"`
	Count  int     `json:"count"`
}

type thing struct {
	ID    int64   `json:"id"`
	Name  string  `json:"name"`
	Owner *string `json:"owner"`
}

func (l things) Table(wide bool) *Table {
	t := &Table{Headers: []string{"name", "id"}}
	if wide {
		t.Headers = append(t.Headers, "owner")
	}
	for _, th := range l.Things {
		row := []Cell{C(th.Name), C(strconv.FormatInt(th.ID, 10))}
		if wide {
			row = append(row, C("x"))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func (l things) Names() []string {
	var out []string
	for _, th := range l.Things {
		out = append(out, "thing/"+th.Name)
	}
	return out
}

func (things) ItemsField() string { return "things" }

func TestListFormats(t *testing.T) {
	alice := "alice"
	l := things{Things: []thing{{ID: 1, Name: "one", Owner: &alice}, {ID: 1234567890123, Name: "two\x1b[31m"}}, Count: 2}
	for _, c := range []struct {
		format    string
		noHeaders bool
		want      string
	}{
		{"table", false, "NAME ID\none 1\ntwo\\x1b[31m 1234567890123\n"},
		{"table", true, "one 1\ntwo\\x1b[31m 1234567890123\n"},
		{"wide", false, "NAME ID OWNER\none 1 x\ntwo\\x1b[31m 1234567890123 x\n"},
		{"name", false, "thing/one\nthing/two\\x1b[31m\n"},
		// jsonpath on the whole document; whole numbers print whole; text
		// from afar is made inert.
		{"jsonpath={.things[*].id}", false, "1 1234567890123"},
		{"jsonpath={.things[*].name}", false, `one two\x1b[31m`},
		{"jsonpath={.count}{\"\\n\"}", false, "2\n"},
		{"jsonpath={.nothing}", false, ""},
		// custom-columns: a row per item, kubectl's relaxed paths,
		// <none> for what is missing or null.
		{"custom-columns=ID:.id,NAME:name,OWNER:{.owner}", false, "ID              NAME          OWNER\n1               one           alice\n1234567890123   two\\x1b[31m   <none>\n"},
		{"custom-columns=NAME:.name", true, "one\ntwo\\x1b[31m\n"},
	} {
		f, err := ParseFormat(c.format)
		if err != nil {
			t.Fatalf("ParseFormat(%q): %v", c.format, err)
		}
		f.NoHeaders = c.noHeaders
		var b bytes.Buffer
		if err := f.Print(&b, false, l); err != nil {
			t.Errorf("-o %s: %v", c.format, err)
			continue
		}
		got := b.String()
		if c.format == "table" || c.format == "wide" {
			// The table pads with its own rule: compare the words.
			got, c.want = squeeze(got), squeeze(c.want)
		}
		if got != c.want {
			t.Errorf("-o %s (no headers %v):\n%q\nwant\n%q", c.format, c.noHeaders, got, c.want)
		}
	}
}

// squeeze is s with each run of spaces made one.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestParseFormatRefusesBadTemplates(t *testing.T) {
	for format, want := range map[string]string{
		"jsonpath={.things[":       "-o jsonpath: ",
		"jsonpath=":                "needs a template",
		"custom-columns=":          "needs columns",
		"custom-columns=NAME":      `"NAME" is not HEADER:PATH`,
		"custom-columns=NAME:.a[":  "column NAME",
		"custom-columns=:.name":    `":.name" is not HEADER:PATH`,
		"custom-columns=A:.a,B:.b": "",
	} {
		_, err := ParseFormat(format)
		switch {
		case want == "" && err != nil:
			t.Errorf("ParseFormat(%q): %v", format, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("ParseFormat(%q) = %v; want one line with %q", format, err, want)
		}
	}
}

func TestTableNoHeaders(t *testing.T) {
	tab := &Table{Headers: []string{"a long header", "b"}, Rows: [][]Cell{{C("x"), C("y")}}, NoHeaders: true}
	var b bytes.Buffer
	if err := tab.Write(&b); err != nil || b.String() != "x   y\n" {
		t.Errorf("NoHeaders: %q, %v; want the columns as wide as their cells", b.String(), err)
	}
}

// A result that is no List has no name or wide form.
func TestNameAndWideNeedAList(t *testing.T) {
	for _, format := range []string{"name", "wide"} {
		var b bytes.Buffer
		if err := Print(&b, format, false, counted{N: 1}); err == nil || b.Len() != 0 {
			t.Errorf("-o %s of a non-list: %v, %q", format, err, b.String())
		}
	}
}
