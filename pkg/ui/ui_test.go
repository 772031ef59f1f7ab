package ui

import (
	"bytes"
	"os"
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
