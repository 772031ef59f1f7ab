package ui

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestColorEnabled(t *testing.T) {
	var buf bytes.Buffer
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	if ColorEnabled(&buf, false) {
		t.Error("colour for a buffer, which is not a terminal")
	}
	// A pipe is not a terminal either.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if ColorEnabled(w, false) {
		t.Error("colour for a pipe")
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no terminal to test with")
	}
	defer tty.Close()
	if !ColorEnabled(tty, false) {
		t.Error("no colour on a terminal")
	}
	if ColorEnabled(tty, true) {
		t.Error("colour despite --no-color")
	}
	t.Setenv("NO_COLOR", "1")
	if ColorEnabled(tty, false) {
		t.Error("colour despite NO_COLOR")
	}
}

func TestPrinters(t *testing.T) {
	v := struct {
		A string `json:"a"`
		B int    `json:"b"`
	}{"x", 1}
	var j, y bytes.Buffer
	if err := PrintJSON(&j, v); err != nil || j.String() != "{\n  \"a\": \"x\",\n  \"b\": 1\n}\n" {
		t.Errorf("PrintJSON = %q, %v", j.String(), err)
	}
	if err := PrintYAML(&y, v); err != nil || y.String() != "a: x\nb: 1\n" {
		t.Errorf("PrintYAML = %q, %v", y.String(), err)
	}
}

func TestRemoteTextIsInert(t *testing.T) {
	var tb bytes.Buffer
	tbl := &Table{Headers: []string{"name", "x"}, Rows: [][]Cell{{C("evil\x1b[2J\x1b]0;pwned\x07\r"), C("ok")}, {C("日本"), C("y")}}}
	if err := tbl.Write(&tb); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(tb.String(), "\x1b\x07\r") || !strings.Contains(tb.String(), `evil\x1b[2J`) {
		t.Fatalf("%q", tb.String())
	}
	var j bytes.Buffer
	if err := PrintJSON(&j, map[string]string{"n": "a\u009b31m\u202eb\x7f\x1b"}); err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || back["n"] != "a\u009b31m\u202eb\x7f\x1b" {
		t.Fatalf("not the same JSON value: %q %v", j.String(), err)
	}
	for _, r := range j.String() {
		if r == 0x9b || r == 0x202e || r == 0x7f || r == 0x1b {
			t.Fatalf("raw %U in %q", r, j.String())
		}
	}
}

// TestTableColourFollowsTheFlag: Color decides, whatever the writer is.
func TestTableColourFollowsTheFlag(t *testing.T) {
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		tbl := &Table{Headers: []string{"status"}, Rows: [][]Cell{{S("active", Good)}}, Color: color}
		if err := tbl.Write(&b); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "\x1b[1mSTATUS") && strings.Contains(b.String(), "\x1b[32mactive"); got != color {
			t.Errorf("Color %v: %q", color, b.String())
		}
		if !color && strings.Contains(b.String(), "\x1b") {
			t.Errorf("escape codes without colour: %q", b.String())
		}
	}
}
