package ui

import (
	"bytes"
	"fmt"
	"io"
)

// The document formats of -o; every other format names a text form.
const (
	JSON = "json"
	YAML = "yaml"
)

// Text is a result's form for people: a table, a few lines of words. It is
// written to w with p's colours (none when piped); text from GitLab or the
// cluster is escaped (Table does it for its cells).
type Text interface {
	WriteText(w io.Writer, p *Painter) error
}

// JSONWriter is a result whose -o json is not its own JSON encoding (render:
// a v1 List of the objects).
type JSONWriter interface {
	WriteJSON(w io.Writer) error
}

// YAMLWriter is a result whose -o yaml is not its JSON document as YAML
// (render: a stream of documents; agent config show: the file itself).
type YAMLWriter interface {
	WriteYAML(w io.Writer) error
}

// Print writes result to w in format, as helm's output.Writer and kubectl's
// printers do: json and yaml are the result's document (its JSON field
// names), any other format is its text form, coloured when color is set.
// Nothing reaches w unless the whole result was encoded.
func Print(w io.Writer, format string, color bool, result any) error {
	var buf bytes.Buffer
	var err error
	switch format {
	case JSON:
		if jw, ok := result.(JSONWriter); ok {
			err = jw.WriteJSON(&buf)
		} else {
			err = PrintJSON(&buf, result)
		}
	case YAML:
		if yw, ok := result.(YAMLWriter); ok {
			err = yw.WriteYAML(&buf)
		} else {
			err = PrintYAML(&buf, result)
		}
	default:
		t, ok := result.(Text)
		if !ok {
			return fmt.Errorf("a %T has no %s form", result, format)
		}
		err = t.WriteText(&buf, NewPainter(w, color))
	}
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
