package agentconfig

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The sections whose access lists can be edited, and the kinds of entries.
const (
	CIAccess   = "ci_access"
	UserAccess = "user_access"
	Projects   = "projects"
	Groups     = "groups"
)

// AddAccess adds {id: id} to section.kind (ci_access.projects, ...) unless an
// entry with that id exists. It reports whether the file changed.
func (c *Config) AddAccess(section, kind, id string) (bool, error) {
	if err := checkNames(section, kind, id); err != nil {
		return false, err
	}
	if c.hasAccess(section, kind, id) {
		return false, nil
	}
	want := func(g map[string]any) {
		sec := ensureMap(g, section)
		list, _ := sec[kind].([]any)
		sec[kind] = append(list, map[string]any{"id": id})
	}
	return true, c.apply(want, func() error { return c.addAccessText(section, kind, id) })
}

// RemoveAccess removes every {id: id} entry from section.kind, then the list
// and the section when they are left empty.
func (c *Config) RemoveAccess(section, kind, id string) (bool, error) {
	if err := checkNames(section, kind, id); err != nil {
		return false, err
	}
	if !c.hasAccess(section, kind, id) {
		return false, nil
	}
	want := func(g map[string]any) {
		sec := g[section].(map[string]any)
		var kept []any
		for _, e := range sec[kind].([]any) {
			if m, ok := e.(map[string]any); !ok || fmt.Sprint(m["id"]) != id {
				kept = append(kept, e)
			}
		}
		sec[kind] = kept
		if len(kept) == 0 {
			delete(sec, kind)
		}
		if len(sec) == 0 {
			delete(g, section)
		}
	}
	return true, c.apply(want, func() error {
		for c.hasAccess(section, kind, id) {
			if err := c.removeAccessText(section, kind, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// AccessAs is the mode section.access_as names ("agent", "user", ...), or ""
// when it is not set.
func (c *Config) AccessAs(section string) string {
	_, sec := lookup(c.root, section)
	_, as := lookup(sec, "access_as")
	if as == nil || as.Kind != yaml.MappingNode || len(as.Content) < 2 {
		return ""
	}
	return as.Content[0].Value
}

// SetAccessAs sets section.access_as to {mode: {}} (user_access: agent or
// user).
func (c *Config) SetAccessAs(section, mode string) (bool, error) {
	if section != UserAccess || (mode != "agent" && mode != "user") {
		return false, fmt.Errorf("access_as: want agent or user for user_access, got %q", mode)
	}
	_, sec := lookup(c.root, section)
	_, as := lookup(sec, "access_as")
	if as != nil && as.Kind == yaml.MappingNode && len(as.Content) == 2 && as.Content[0].Value == mode {
		return false, nil
	}
	want := func(g map[string]any) {
		ensureMap(g, section)["access_as"] = map[string]any{mode: map[string]any{}}
	}
	return true, c.apply(want, func() error { return c.setAccessAsText(section, mode) })
}

func checkNames(section, kind, id string) error {
	if section != CIAccess && section != UserAccess {
		return fmt.Errorf("unknown section %q", section)
	}
	return ValidateEntry(kind, id)
}

// ValidateEntry checks an access entry (a project or group path) before any
// file is read.
func ValidateEntry(kind, id string) error {
	if kind != Projects && kind != Groups {
		return fmt.Errorf("unknown access kind %q", kind)
	}
	if !pathRE.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("invalid %s entry %q: give the full path of a GitLab %s, e.g. group/sub/project", kind, id, strings.TrimSuffix(kind, "s"))
	}
	return nil
}

// pathRE is a GitLab group or project full path.
var pathRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)

func (c *Config) hasAccess(section, kind, id string) bool {
	_, sec := lookup(c.root, section)
	_, list := lookup(sec, kind)
	return findItem(list, id) >= 0
}

func findItem(list *yaml.Node, id string) int {
	if list == nil || list.Kind != yaml.SequenceNode {
		return -1
	}
	for i, item := range list.Content {
		// GitLab resolves full paths whatever their case.
		if _, v := lookup(item, "id"); v != nil && strings.EqualFold(v.Value, id) {
			return i
		}
	}
	return -1
}

func ensureMap(g map[string]any, key string) map[string]any {
	m, ok := g[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		g[key] = m
	}
	return m
}

// apply runs a text edit and checks that the file now means exactly what
// want makes of the old meaning: the edit changed what it was asked to and
// nothing else. On any failure the config is left as it was.
func (c *Config) apply(want func(map[string]any), edit func() error) error {
	old := *c
	expected, err := decodeGeneric(c.src)
	if err != nil {
		return err
	}
	want(expected)
	if err := edit(); err != nil {
		*c = old
		return err
	}
	got, err := decodeGeneric(c.src)
	if err != nil || !reflect.DeepEqual(normalizeGeneric(expected), normalizeGeneric(got)) {
		*c = old
		return fmt.Errorf("%s: the edit did not come out as intended (%v); the file was left unchanged, please report this", c.name, err)
	}
	return nil
}

func decodeGeneric(src []byte) (map[string]any, error) {
	var g map[string]any
	if err := yaml.Unmarshal(src, &g); err != nil {
		return nil, err
	}
	if g == nil {
		g = map[string]any{}
	}
	return g, nil
}

// normalizeGeneric is a deep copy in which a nil map or list is an empty
// one, so that the intended document (built in Go, with nil) and the edited
// file (decoded, with `{}` and `[]`) compare alike.
func normalizeGeneric(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range t {
			out[k] = normalizeGeneric(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalizeGeneric(e)
		}
		return out
	}
	return v
}

// setText replaces the file with lines and parses it again.
func (c *Config) setText(lines []string) error {
	src := []byte(strings.Join(lines, ""))
	nc, err := Parse(c.name, src)
	if err != nil {
		return err
	}
	*c = *nc
	return nil
}

func (c *Config) indentOf(i int) int {
	l := c.lines[i]
	return len(l) - len(strings.TrimLeft(l, " "))
}

func (c *Config) isContent(i int) bool {
	t := strings.TrimSpace(c.lines[i])
	return t != "" && !strings.HasPrefix(t, "#")
}

// pairEnd is the index of the last content line of the key/value pair whose
// key is key: lines indented deeper than the key belong to it, and so do the
// dashes of a sequence written at the key's own indentation.
func (c *Config) pairEnd(key, value *yaml.Node) int {
	start := key.Line - 1
	keyIndent := key.Column - 1
	last := start
	if value != nil && value.Line-1 > last {
		last = value.Line - 1
	}
	seq := value != nil && value.Kind == yaml.SequenceNode && value.Style&yaml.FlowStyle == 0
	for i := start + 1; i < len(c.lines); i++ {
		if !c.isContent(i) {
			continue
		}
		ind := c.indentOf(i)
		dash := strings.HasPrefix(strings.TrimLeft(c.lines[i], " "), "-")
		if ind > keyIndent || (seq && ind == keyIndent && dash) {
			last = i
			continue
		}
		break
	}
	return last
}

// itemRange is the line range [first, last] of item idx of block sequence
// list, with the comment lines just above it that YAML gives to the item.
func (c *Config) itemRange(list *yaml.Node, idx int) (int, int) {
	dashCol := list.Column - 1
	item := list.Content[idx]
	first := item.Line - 1
	for first > 0 && !(c.indentOf(first) == dashCol && strings.HasPrefix(strings.TrimLeft(c.lines[first], " "), "-")) {
		first--
	}
	last := first
	for i := first + 1; i < len(c.lines); i++ {
		if !c.isContent(i) {
			continue
		}
		if c.indentOf(i) > dashCol {
			last = i
			continue
		}
		break
	}
	if item.HeadComment != "" {
		for first > 0 && strings.HasPrefix(strings.TrimSpace(c.lines[first-1]), "#") && c.indentOf(first-1) >= dashCol {
			first--
		}
	}
	return first, last
}

// insertAfter puts newLines after line index i (-1: at the top), making sure
// the line before them ends with a newline.
func (c *Config) insertAfter(i int, newLines []string) error {
	lines := append([]string(nil), c.lines...)
	if i >= 0 && !strings.HasSuffix(lines[i], "\n") {
		lines[i] += "\n"
	}
	out := append(append(append([]string{}, lines[:i+1]...), newLines...), lines[i+1:]...)
	return c.setText(out)
}

// replaceLines puts newLines in place of lines [first, last].
func (c *Config) replaceLines(first, last int, newLines []string) error {
	tail := c.lines[last+1:]
	if len(newLines) > 0 && last == len(c.lines)-1 && !strings.HasSuffix(c.lines[last], "\n") {
		// keep the file's missing final newline missing
		n := len(newLines) - 1
		newLines = append(append([]string{}, newLines[:n]...), strings.TrimSuffix(newLines[n], "\n"))
	}
	out := append(append(append([]string{}, c.lines[:first]...), newLines...), tail...)
	return c.setText(out)
}

// lastLine is the index of the file's last content line, -1 if none.
func (c *Config) lastLine() int {
	for i := len(c.lines) - 1; i >= 0; i-- {
		if c.isContent(i) {
			return i
		}
	}
	return -1
}

// appendTop adds lines at the end of the top-level map.
func (c *Config) appendTop(newLines []string) error {
	if c.root != nil && c.root.Kind == yaml.MappingNode && c.root.Style&yaml.FlowStyle != 0 {
		return c.errAt(c.root, "the top level is written as a flow map {...}; write it as block YAML to edit it")
	}
	if c.root == nil {
		// Empty or comments only: add after everything.
		return c.insertAfter(len(c.lines)-1, newLines)
	}
	// After the comments indented under the last section too (a
	// commented-out entry belongs to it); column-0 comments after them
	// stay at the end of the file.
	at := c.lastLine()
	for j := at + 1; j < len(c.lines); j++ {
		l := c.lines[j]
		trimmed := strings.TrimLeft(l, " \t")
		switch {
		case strings.TrimSpace(l) == "":
			continue
		case len(trimmed) < len(l) && strings.HasPrefix(trimmed, "#"):
			at = j
			continue
		}
		break
	}
	return c.insertAfter(at, newLines)
}

// clearExplicitNull turns "key: null" (or ~) into "key:" so that lines can be
// added below it.
func (c *Config) clearExplicitNull(key, value *yaml.Node) []string {
	lines := append([]string(nil), c.lines...)
	if value.Value != "" && value.Line == key.Line {
		l := lines[value.Line-1]
		col := value.Column - 1
		rest := l[col+len(value.Value):]
		head := strings.TrimRight(l[:col], " ")
		if strings.TrimSpace(rest) == "" {
			lines[value.Line-1] = head + "\n"
		} else {
			lines[value.Line-1] = head + " " + strings.TrimLeft(rest, " ")
		}
	}
	return lines
}

func scalar(s string) string {
	b, _ := yaml.Marshal(s)
	return strings.TrimSuffix(string(b), "\n")
}

func pad(n int) string { return strings.Repeat(" ", n) }

func (c *Config) addAccessText(section, kind, id string) error {
	item := "- id: " + scalar(id) + "\n"
	secKey, sec := lookup(c.root, section)
	base := 0
	if c.root != nil {
		base = c.root.Column - 1
	}
	switch {
	case secKey == nil:
		return c.appendTop([]string{pad(base) + section + ":\n", pad(base+2) + kind + ":\n", pad(base+2) + item})
	case isNull(sec):
		lines := c.clearExplicitNull(secKey, sec)
		at := secKey.Line - 1
		return c.setTextInsert(lines, at, []string{pad(base+2) + kind + ":\n", pad(base+2) + item})
	case sec.Style&yaml.FlowStyle != 0:
		return c.reencodePair(secKey, sec, func(v *yaml.Node) { addItemNode(v, kind, id) })
	}
	listKey, list := lookup(sec, kind)
	ind := sec.Column - 1
	switch {
	case listKey == nil:
		return c.insertAfter(c.pairEnd(secKey, sec), []string{pad(ind) + kind + ":\n", pad(ind) + item})
	case isNull(list):
		lines := c.clearExplicitNull(listKey, list)
		return c.setTextInsert(lines, listKey.Line-1, []string{pad(ind) + item})
	case list.Style&yaml.FlowStyle != 0:
		return c.reencodePair(listKey, list, func(v *yaml.Node) { v.Content = append(v.Content, idNode(id)) })
	}
	return c.insertAfter(c.pairEnd(listKey, list), []string{pad(list.Column-1) + item})
}

// setTextInsert is insertAfter on an edited copy of the lines.
func (c *Config) setTextInsert(lines []string, after int, newLines []string) error {
	if err := c.setText(lines); err != nil {
		return err
	}
	return c.insertAfter(after, newLines)
}

func (c *Config) removeAccessText(section, kind, id string) error {
	secKey, sec := lookup(c.root, section)
	listKey, list := lookup(sec, kind)
	idx := findItem(list, id)
	if list.Style&yaml.FlowStyle != 0 || sec.Style&yaml.FlowStyle != 0 {
		if len(list.Content) == 1 && len(sec.Content) == 2 {
			return c.replaceLines(secKey.Line-1, c.pairEnd(secKey, sec), nil)
		}
		if sec.Style&yaml.FlowStyle != 0 {
			return c.reencodePair(secKey, sec, func(v *yaml.Node) {
				_, l := lookup(v, kind)
				removeItemNode(v, l, kind, id)
			})
		}
		if len(list.Content) == 1 {
			return c.replaceLines(listKey.Line-1, c.pairEnd(listKey, list), nil)
		}
		return c.reencodePair(listKey, list, func(v *yaml.Node) {
			v.Content = append(v.Content[:idx:idx], v.Content[idx+1:]...)
		})
	}
	switch {
	case len(list.Content) == 1 && len(sec.Content) == 2:
		return c.replaceLines(secKey.Line-1, c.pairEnd(secKey, sec), nil)
	case len(list.Content) == 1:
		return c.replaceLines(listKey.Line-1, c.pairEnd(listKey, list), nil)
	}
	first, last := c.itemRange(list, idx)
	return c.replaceLines(first, last, nil)
}

func (c *Config) setAccessAsText(section, mode string) error {
	secKey, sec := lookup(c.root, section)
	base := 0
	if c.root != nil {
		base = c.root.Column - 1
	}
	block := func(ind int) []string {
		return []string{pad(ind) + "access_as:\n", pad(ind+2) + mode + ": {}\n"}
	}
	switch {
	case secKey == nil:
		return c.appendTop(append([]string{pad(base) + section + ":\n"}, block(base+2)...))
	case isNull(sec):
		return c.setTextInsert(c.clearExplicitNull(secKey, sec), secKey.Line-1, block(base+2))
	case sec.Style&yaml.FlowStyle != 0:
		return c.reencodePair(secKey, sec, func(v *yaml.Node) { setAccessAsNode(v, mode) })
	}
	asKey, as := lookup(sec, "access_as")
	if asKey == nil {
		// GitLab's docs put access_as first in user_access.
		return c.insertAfter(sec.Content[0].Line-2, block(sec.Column-1))
	}
	return c.replaceLines(asKey.Line-1, c.pairEnd(asKey, as), block(asKey.Column-1))
}

// reencodePair rewrites one key/value pair (a flow-style value, which cannot
// be edited line by line) as block YAML after change modifies a copy of the
// value. Only that pair's lines change.
func (c *Config) reencodePair(key, value *yaml.Node, change func(*yaml.Node)) error {
	v := deepCopy(value)
	clearFlow(v)
	change(v)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	ind := key.Column - 1
	lines := []string{pad(ind) + key.Value + ":\n"}
	body := strings.TrimSuffix(buf.String(), "\n")
	if len(v.Content) == 0 {
		lines = []string{pad(ind) + key.Value + ": " + body + "\n"}
	} else {
		for _, l := range strings.Split(body, "\n") {
			lines = append(lines, pad(ind+2)+l+"\n")
		}
	}
	return c.replaceLines(key.Line-1, c.pairEnd(key, value), lines)
}

func deepCopy(n *yaml.Node) *yaml.Node {
	cp := *n
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, ch := range n.Content {
		cp.Content[i] = deepCopy(ch)
	}
	return &cp
}

func clearFlow(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	for _, ch := range n.Content {
		clearFlow(ch)
	}
}

func idNode(id string) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "id"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: id},
	}}
}

func addItemNode(sec *yaml.Node, kind, id string) {
	if _, list := lookup(sec, kind); list != nil && list.Kind == yaml.SequenceNode {
		list.Content = append(list.Content, idNode(id))
		return
	} else if list != nil {
		*list = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{idNode(id)}}
		return
	}
	sec.Content = append(sec.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kind},
		&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{idNode(id)}})
}

func removeItemNode(sec, list *yaml.Node, kind, id string) {
	var kept []*yaml.Node
	for _, item := range list.Content {
		if _, v := lookup(item, "id"); v == nil || v.Value != id {
			kept = append(kept, item)
		}
	}
	list.Content = kept
	if len(kept) == 0 {
		for i := 0; i+1 < len(sec.Content); i += 2 {
			if sec.Content[i].Value == kind {
				sec.Content = append(sec.Content[:i:i], sec.Content[i+2:]...)
				break
			}
		}
	}
}

func setAccessAsNode(sec *yaml.Node, mode string) {
	as := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: mode},
		{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle},
	}}
	if _, v := lookup(sec, "access_as"); v != nil {
		*v = *as
		return
	}
	sec.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "access_as"}, as}, sec.Content...)
}

// Entries lists the ids of section.kind (ci_access.projects, ...), in order.
func (c *Config) Entries(section, kind string) []string {
	g, err := decodeGeneric(c.src)
	if err != nil {
		return nil
	}
	sec, _ := g[section].(map[string]any)
	list, _ := sec[kind].([]any)
	var out []string
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// Has reports whether the file sets the key at path (gitops,
// manifest_projects).
func (c *Config) Has(path ...string) bool {
	g, err := decodeGeneric(c.src)
	if err != nil {
		return false
	}
	var cur any = g
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	return true
}
