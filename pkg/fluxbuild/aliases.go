package fluxbuild

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yaml "go.yaml.in/yaml/v3"
)

// MaxAliasNodes bounds the YAML nodes that aliases may add to one file when
// expanded. kustomize expands every alias (kyaml's DeAnchor) when it reads
// a file, so a few hundred bytes of nested aliases (a "billion laughs")
// would take all the memory of the machine running the build.
const MaxAliasNodes = 1 << 20

// checkAliases refuses a file whose YAML documents grow by more than
// MaxAliasNodes nodes when their aliases are expanded. Content that is not
// YAML is left to kustomize to refuse.
func checkAliases(data []byte) error {
	if !bytes.ContainsRune(data, '&') || !bytes.ContainsRune(data, '*') {
		return nil // no anchor or no alias
	}
	d := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := d.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return nil // not YAML (or not valid): kustomize says what is wrong
		}
		literal, expanded := int64(0), int64(0)
		memo := map[*yaml.Node]int64{}
		var count func(n *yaml.Node, depth int) int64
		count = func(n *yaml.Node, depth int) int64 {
			if n == nil || depth > 10_000 {
				return 1
			}
			if n.Kind == yaml.AliasNode {
				return count(n.Alias, depth+1)
			}
			if s, ok := memo[n]; ok {
				return s
			}
			s := int64(1)
			for _, c := range n.Content {
				s += count(c, depth+1)
				if s > 1<<40 {
					s = 1 << 40
				}
			}
			memo[n] = s
			return s
		}
		var literalCount func(n *yaml.Node)
		literalCount = func(n *yaml.Node) {
			literal++
			if n.Kind == yaml.AliasNode {
				return
			}
			for _, c := range n.Content {
				literalCount(c)
			}
		}
		literalCount(&n)
		expanded = count(&n, 0)
		if expanded-literal > MaxAliasNodes {
			return fmt.Errorf("its YAML aliases expand to more than %d nodes (a \"billion laughs\"): refused, as kustomize would expand them all", MaxAliasNodes)
		}
	}
}
