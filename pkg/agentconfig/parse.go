// Package agentconfig reads and edits an agent's config file
// (.gitlab/agents/NAME/config.yaml) in place: an edit changes the lines of the
// node it edits and keeps every other byte, key, comment and the order.
package agentconfig

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	gy "github.com/goccy/go-yaml"
	gyparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest config file GitLab reads (128 KiB).
const MaxSize = 128 * 1024

// Path is where GitLab reads the config of agent name, in its config project.
func Path(name string) string { return ".gitlab/agents/" + name + "/config.yaml" }

// PositionError is a problem at a place in the file.
type PositionError struct {
	File         string
	Line, Column int // 1-based; Column 0 when unknown
	Msg          string
}

func (e *PositionError) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Config is a parsed config file that can be edited.
type Config struct {
	name  string // the file name for messages
	src   []byte
	lines []string // src split after each "\n"
	root  *yaml.Node
}

// Parse reads a config file; name is used in messages. An empty file is
// valid. A file GitLab would reject (too large, not YAML, not a map at the
// top, ci_access or user_access of the wrong shape) is an error with its
// line and column.
func Parse(name string, src []byte) (*Config, error) {
	if len(src) > MaxSize {
		return nil, &PositionError{File: name, Msg: fmt.Sprintf("the file has %d bytes; GitLab reads at most %d (128 KiB)", len(src), MaxSize)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, syntaxError(name, src, err)
	}
	c := &Config{name: name, src: src, lines: splitLines(src)}
	if len(doc.Content) > 0 {
		c.root = doc.Content[0]
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Bytes is the file's content.
func (c *Config) Bytes() []byte { return c.src }

var lineRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// syntaxError places a YAML error. yaml.v3 decides validity (it is what Go
// programs such as KAS parse with); goccy/go-yaml, which reports columns,
// locates the error when it sees it too.
func syntaxError(name string, src []byte, err error) error {
	var se *gy.SyntaxError
	if _, perr := gyparser.ParseBytes(src, 0); errors.As(perr, &se) && se.Token != nil {
		return &PositionError{File: name, Line: se.Token.Position.Line, Column: se.Token.Position.Column, Msg: "invalid YAML: " + se.Message}
	}
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &PositionError{File: name, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &PositionError{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func splitLines(src []byte) []string {
	var lines []string
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			lines = append(lines, string(src))
			break
		}
		lines = append(lines, string(src[:i+1]))
		src = src[i+1:]
	}
	return lines
}

func (c *Config) errAt(n *yaml.Node, format string, args ...any) error {
	return &PositionError{File: c.name, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// check validates the parts of the file this package edits, as GitLab would
// read them.
func (c *Config) check() error {
	if c.root == nil {
		return nil
	}
	if c.root.Kind != yaml.MappingNode {
		return c.errAt(c.root, "the top level must be a map of settings (ci_access, user_access, ...)")
	}
	for _, section := range []string{"ci_access", "user_access"} {
		_, v := lookup(c.root, section)
		if v == nil || isNull(v) {
			continue
		}
		if v.Kind != yaml.MappingNode {
			return c.errAt(v, "%s must be a map", section)
		}
		for _, kind := range []string{"projects", "groups"} {
			_, list := lookup(v, kind)
			if list == nil || isNull(list) {
				continue
			}
			if list.Kind != yaml.SequenceNode {
				return c.errAt(list, "%s.%s must be a list of {id: path}", section, kind)
			}
			for i, item := range list.Content {
				if _, id := lookup(item, "id"); item.Kind != yaml.MappingNode || id == nil || id.Kind != yaml.ScalarNode || id.Value == "" {
					return c.errAt(item, "%s.%s[%d] must be a map with an id (a project or group path)", section, kind, i)
				}
			}
		}
		if _, as := lookup(v, "access_as"); as != nil && !isNull(as) && as.Kind != yaml.MappingNode {
			return c.errAt(as, "%s.access_as must be a map such as {agent: {}}", section)
		}
	}
	return nil
}

// lookup finds key in mapping m and returns the key and value nodes.
func lookup(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}
