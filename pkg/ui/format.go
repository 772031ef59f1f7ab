package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/jsonpath"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// The formats of -o a list takes besides its text form, JSON and YAML, as
// kubectl's printers have them.
const (
	Name          = "name"
	Wide          = "wide"
	JSONPath      = "jsonpath"
	CustomColumns = "custom-columns"
)

// List is a result that is a list of things (agents, tokens): kubectl's
// list printers apply to it (-o name, -o wide, -o custom-columns,
// --no-headers).
type List interface {
	// Table is the list as a table, with -o wide's columns too when wide;
	// nil when its text form is not a table (status: a screen per agent).
	Table(wide bool) *Table
	// Names are -o name's lines, kind/name for each item ("agent/prod").
	Names() []string
	// ItemsField is the field of the JSON document that holds the items:
	// custom-columns makes a row of each.
	ItemsField() string
}

// Format is a parsed -o value.
type Format struct {
	// Name is json, yaml, name, wide, jsonpath, custom-columns, or the name
	// of a text form (table, text, unified, ...).
	Name string
	// NoHeaders leaves out the header row of a table (--no-headers).
	NoHeaders bool

	path    *printers.JSONPathPrinter
	columns []column
}

// column is one of custom-columns': its header and the JSONPath of its
// cells, relative to an item.
type column struct {
	header string
	path   *jsonpath.JSONPath
}

// ParseFormat parses an -o value: jsonpath=TEMPLATE and
// custom-columns=HEADER:PATH,... have their templates checked here, before
// anything is asked of anyone; any other value is a format's name.
func ParseFormat(s string) (Format, error) {
	name, arg, hasArg := strings.Cut(s, "=")
	switch {
	case name == JSONPath && hasArg:
		if arg == "" {
			return Format{}, fmt.Errorf("-o jsonpath= needs a template, e.g. -o jsonpath='{.items[*].name}'")
		}
		p, err := printers.NewJSONPathPrinter(arg)
		if err != nil {
			return Format{}, fmt.Errorf("-o jsonpath: %w", err)
		}
		p.AllowMissingKeys(true) // as kubectl's --allow-missing-template-keys defaults
		return Format{Name: JSONPath, path: p}, nil
	case name == CustomColumns && hasArg:
		cols, err := parseColumns(arg)
		return Format{Name: CustomColumns, columns: cols}, err
	}
	return Format{Name: s}, nil
}

// parseColumns parses custom-columns' spec as kubectl does:
// HEADER:PATH[,HEADER:PATH]..., a path with or without its braces and
// leading dot.
func parseColumns(spec string) ([]column, error) {
	if spec == "" {
		return nil, fmt.Errorf("-o custom-columns= needs columns, e.g. -o custom-columns=NAME:.name,ID:.id")
	}
	var cols []column
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok || header == "" || path == "" {
			return nil, fmt.Errorf("-o custom-columns: %q is not HEADER:PATH (e.g. NAME:.name)", part)
		}
		p := jsonpath.New(header).AllowMissingKeys(true)
		if err := p.Parse(relaxed(path)); err != nil {
			return nil, fmt.Errorf("-o custom-columns: column %s: %w", header, err)
		}
		cols = append(cols, column{header: header, path: p})
	}
	return cols, nil
}

// relaxed is a JSONPath as kubectl's custom-columns take it: ".a.b", "a.b"
// and "{.a.b}" alike.
func relaxed(path string) string {
	path = strings.TrimSuffix(strings.TrimPrefix(path, "{"), "}")
	if !strings.HasPrefix(path, ".") && !strings.HasPrefix(path, "[") {
		path = "." + path
	}
	return "{" + path + "}"
}

// Document reports whether the format is for scripts (a document, names,
// a template) rather than a text form for people.
func (f Format) Document() bool {
	switch f.Name {
	case JSON, YAML, Name, JSONPath, CustomColumns:
		return true
	}
	return false
}

// Print writes result to w in f, as helm's output.Writer and kubectl's
// printers do: json and yaml are the result's document (its JSON field
// names), jsonpath and custom-columns are taken from that document, name
// and wide are a List's, any other format is the result's text form (a
// List's table), coloured when color is set. Nothing reaches w unless the
// whole result was encoded.
func (f Format) Print(w io.Writer, color bool, result any) error {
	var buf bytes.Buffer
	var err error
	list, isList := result.(List)
	switch f.Name {
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
	case JSONPath, CustomColumns:
		err = f.printTemplate(&buf, result)
	case Name:
		if !isList {
			return fmt.Errorf("a %T has no %s form", result, f.Name)
		}
		for _, n := range list.Names() {
			buf.WriteString(safetext.Line(n) + "\n")
		}
	default:
		if isList {
			if t := list.Table(f.Name == Wide); t != nil {
				t.Color, t.NoHeaders = color, f.NoHeaders
				err = t.Write(&buf)
				break
			}
		}
		t, ok := result.(Text)
		if !ok || f.Name == Wide {
			return fmt.Errorf("a %T has no %s form", result, f.Name)
		}
		err = t.WriteText(&buf, NewPainter(w, color))
	}
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// printTemplate writes the result's JSON document through f's jsonpath
// template, or a row of f's custom columns for each of a List's items.
// Text from GitLab or the cluster in it is made inert.
func (f Format) printTemplate(w io.Writer, result any) error {
	var raw []byte
	var err error
	if jw, ok := result.(JSONWriter); ok {
		var b bytes.Buffer
		err, raw = jw.WriteJSON(&b), b.Bytes()
	} else {
		raw, err = json.Marshal(result)
	}
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	var doc any
	// Whole numbers become int64, as kubectl's unstructured objects have
	// them: an ID prints as 42, not 4.2e+01.
	if err := utiljson.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("decoding JSON: %w", err)
	}
	if f.Name == JSONPath {
		var b bytes.Buffer
		if err := f.path.Execute(&b, doc); err != nil {
			return fmt.Errorf("-o jsonpath: %w", err)
		}
		_, err := io.WriteString(w, safetext.Text(b.String()))
		return err
	}
	items := []any{doc}
	if l, ok := result.(List); ok {
		m, _ := doc.(map[string]any)
		items, _ = m[l.ItemsField()].([]any)
	}
	tw := printers.GetNewTabWriter(w)
	if !f.NoHeaders {
		headers := make([]string, len(f.columns))
		for i, c := range f.columns {
			headers[i] = c.header
		}
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
	}
	for _, item := range items {
		cells := make([]string, len(f.columns))
		for i, c := range f.columns {
			cell, err := cellOf(c.path, item)
			if err != nil {
				return fmt.Errorf("-o custom-columns: column %s: %w", c.header, err)
			}
			cells[i] = cell
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cellOf is what path finds in item, as kubectl's custom-columns prints
// it: values joined with commas, "<none>" for none.
func cellOf(path *jsonpath.JSONPath, item any) (string, error) {
	results, err := path.FindResults(item)
	if err != nil {
		return "", err
	}
	var values []string
	for _, r := range results {
		for _, v := range r {
			if v.IsValid() && v.Interface() != nil { // null is no value
				values = append(values, safetext.Line(fmt.Sprint(v.Interface())))
			}
		}
	}
	if len(values) == 0 {
		return "<none>", nil
	}
	return strings.Join(values, ","), nil
}
