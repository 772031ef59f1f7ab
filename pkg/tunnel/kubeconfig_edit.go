package tunnel

import (
	"bytes"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A kubeconfig is edited as text: the items of clusters, users and contexts
// that the plugin writes are replaced or appended line by line, and every
// other byte (other entries, comments, order, quoting) stays as it was.
// client-go's own writer re-serialises the whole file instead.

// item is one named entry of a kubeconfig list, as YAML lines starting "- ".
type item struct {
	list string // clusters, users or contexts
	name string
	text string // "- name: ...\n  cluster: ...\n", indented for column 0
}

// errNotEditable: the file's shape is not one the line editor handles (JSON,
// flow style, several documents, anchors); the caller rewrites it whole.
var errNotEditable = fmt.Errorf("kubeconfig is not in the block YAML layout kubectl writes")

// lines splits src into lines that keep their "\n".
func lines(src []byte) []string {
	var out []string
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			out = append(out, string(src)+"\n")
			break
		}
		out = append(out, string(src[:i+1]))
		src = src[i+1:]
	}
	return out
}

// topLevel parses src and returns its top mapping; errNotEditable when src
// is not one block mapping.
func topLevel(src []byte) (*yaml.Node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parsing kubeconfig: %w", err)
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return nil, errNotEditable
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errNotEditable
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || m.Column != 1 {
		return nil, errNotEditable
	}
	var bad bool
	walk(m, func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			bad = true
		}
	})
	if bad {
		return nil, errNotEditable
	}
	return m, nil
}

func walk(n *yaml.Node, fn func(*yaml.Node)) {
	fn(n)
	for _, c := range n.Content {
		walk(c, fn)
	}
}

// entryEnd is the index of the line after the last one that belongs to a
// block that starts at line start and runs at most up to limit (exclusive):
// trailing blank lines and comments at column 1 belong to what follows.
func entryEnd(ls []string, start, limit int) int {
	end := limit
	for end > start+1 {
		l := ls[end-1]
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			end--
			continue
		}
		break
	}
	return end
}

// setItem replaces the item of it.list named it.name, or appends it to the
// list (creating the list when absent), and returns the new text.
func setItem(src []byte, it item) ([]byte, error) {
	m, err := topLevel(src)
	if err != nil {
		return nil, err
	}
	ls := lines(src)
	keyIdx := -1
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value == it.list {
			keyIdx = i
		}
	}
	// The line (0-based) where the next top-level key starts, or EOF.
	nextKeyLine := func(after int) int {
		best := len(ls)
		for i := 0; i < len(m.Content); i += 2 {
			if l := m.Content[i].Line - 1; l > after && l < best {
				best = l
			}
		}
		return best
	}
	if keyIdx < 0 {
		out := string(src)
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		return []byte(out + it.list + ":\n" + it.text), nil
	}
	key, val := m.Content[keyIdx], m.Content[keyIdx+1]
	keyLine := key.Line - 1
	switch {
	case val.Kind == yaml.ScalarNode && (val.Tag == "!!null"),
		val.Kind == yaml.SequenceNode && len(val.Content) == 0:
		// "clusters: null", "clusters:" or "clusters: []": the key's
		// line becomes the start of a block list.
		if val.Line-1 != keyLine || (val.Kind == yaml.SequenceNode && val.Style&yaml.FlowStyle == 0) {
			return nil, errNotEditable
		}
		return splice(ls, keyLine, keyLine+1, it.list+":\n"+it.text), nil
	case val.Kind != yaml.SequenceNode || val.Style&yaml.FlowStyle != 0:
		return nil, errNotEditable
	}
	indent := val.Content[0].Column - 3 // "- " before the item's first key
	if indent < 0 || val.Column-1 != indent {
		return nil, errNotEditable
	}
	limit := nextKeyLine(keyLine)
	for i, entry := range val.Content {
		if entry.Kind != yaml.MappingNode || entry.Style&yaml.FlowStyle != 0 {
			return nil, errNotEditable
		}
		if nameOf(entry) != it.name {
			continue
		}
		start := entry.Line - 1
		if !strings.HasPrefix(strings.TrimLeft(ls[start], " "), "- ") {
			return nil, errNotEditable
		}
		end := limit
		if i+1 < len(val.Content) {
			end = val.Content[i+1].Line - 1
		}
		return splice(ls, start, entryEnd(ls, start, end), reindent(it.text, indent)), nil
	}
	last := val.Content[len(val.Content)-1].Line - 1
	at := entryEnd(ls, last, limit)
	return splice(ls, at, at, reindent(it.text, indent)), nil
}

// setCurrentContext sets current-context, in place when the key exists.
func setCurrentContext(src []byte, name string) ([]byte, error) {
	m, err := topLevel(src)
	if err != nil {
		return nil, err
	}
	line := "current-context: " + quoteScalar(name) + "\n"
	ls := lines(src)
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value != "current-context" {
			continue
		}
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind != yaml.ScalarNode || v.Line != k.Line || strings.Contains(v.Value, "\n") {
			return nil, errNotEditable
		}
		return splice(ls, k.Line-1, k.Line, line), nil
	}
	out := string(src)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return []byte(out + line), nil
}

func nameOf(entry *yaml.Node) string {
	for j := 0; j+1 < len(entry.Content); j += 2 {
		if entry.Content[j].Value == "name" {
			return entry.Content[j+1].Value
		}
	}
	return ""
}

func splice(ls []string, from, to int, text string) []byte {
	var b strings.Builder
	for _, l := range ls[:from] {
		b.WriteString(l)
	}
	b.WriteString(text)
	for _, l := range ls[to:] {
		b.WriteString(l)
	}
	return []byte(b.String())
}

// reindent moves an item written at column 0 to indent spaces.
func reindent(text string, indent int) string {
	if indent == 0 {
		return text
	}
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	for _, l := range lines([]byte(text)) {
		if strings.TrimSpace(l) != "" {
			b.WriteString(pad)
		}
		b.WriteString(l)
	}
	return b.String()
}

// quoteScalar writes a string as a YAML scalar, quoted when it must be.
func quoteScalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// itemTexts cuts the items of a kubeconfig written by clientcmd.Write (block
// style, lists at column 0) into their texts, by list and name.
func itemTexts(src []byte) (map[string]map[string]string, error) {
	m, err := topLevel(src)
	if err != nil {
		return nil, err
	}
	ls := lines(src)
	out := map[string]map[string]string{}
	keyLines := []int{}
	for i := 0; i < len(m.Content); i += 2 {
		keyLines = append(keyLines, m.Content[i].Line-1)
	}
	for i := 0; i < len(m.Content); i += 2 {
		val := m.Content[i+1]
		if val.Kind != yaml.SequenceNode {
			continue
		}
		limit := len(ls)
		for _, l := range keyLines {
			if l > m.Content[i].Line-1 && l < limit {
				limit = l
			}
		}
		list := map[string]string{}
		for j, entry := range val.Content {
			start := entry.Line - 1 // the item's first key; "- " is on this line
			if !strings.HasPrefix(strings.TrimLeft(ls[start], " "), "- ") {
				return nil, errNotEditable
			}
			end := limit
			if j+1 < len(val.Content) {
				end = val.Content[j+1].Line - 1
			}
			list[nameOf(entry)] = strings.Join(ls[start:entryEnd(ls, start, end)], "")
		}
		out[m.Content[i].Value] = list
	}
	return out, nil
}
