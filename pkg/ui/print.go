package ui

import (
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

// Print writes result to w in format (ParseFormat, then Format.Print).
func Print(w io.Writer, format string, color bool, result any) error {
	f, err := ParseFormat(format)
	if err != nil {
		return err
	}
	return f.Print(w, color, result)
}
