package fake

import (
	"encoding/json"
	"strings"
)

// A field set is a FieldsV1 tree as managedFields holds it: "f:name" → the
// fields under it, {} for the whole value.

// configFields is the set of fields an apply configuration sets, but for
// those that name the object (apiVersion, kind, metadata.name and
// namespace), which the apiserver gives no manager. Lists are owned whole:
// without a schema the fake cannot tell a list's keys (the apiserver owns a
// keyed list's elements one by one).
func configFields(cfg map[string]any) map[string]any {
	c := make(map[string]any, len(cfg))
	for k, v := range cfg {
		if k != "apiVersion" && k != "kind" {
			c[k] = v
		}
	}
	if meta, ok := cfg["metadata"].(map[string]any); ok {
		m := map[string]any{}
		for k, v := range meta {
			if k != "name" && k != "namespace" {
				m[k] = v
			}
		}
		delete(c, "metadata")
		if len(m) > 0 {
			c["metadata"] = m
		}
	}
	return fieldsOf(c)
}

func fieldsOf(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, val := range v {
		if m, ok := val.(map[string]any); ok && len(m) > 0 {
			out["f:"+k] = fieldsOf(m)
			continue
		}
		out["f:"+k] = map[string]any{}
	}
	return out
}

// leaves calls fn with the path (field names) of each leaf of set.
func leaves(set map[string]any, fn func(path []string)) {
	var walk func(node map[string]any, path []string)
	walk = func(node map[string]any, path []string) {
		for k, sub := range node {
			name, ok := strings.CutPrefix(k, "f:")
			if !ok {
				continue
			}
			p := append(append([]string{}, path...), name)
			if m, _ := sub.(map[string]any); isLeaf(m) {
				fn(p)
			} else {
				walk(m, p)
			}
		}
	}
	walk(set, nil)
}

func isLeaf(m map[string]any) bool {
	for k := range m {
		if k != "." {
			return false
		}
	}
	return true
}

// covers reports whether set has the field at path: the field, a part of
// it, or a whole value that holds it.
func covers(set map[string]any, path []string) bool {
	node := set
	for _, name := range path {
		sub, ok := node["f:"+name].(map[string]any)
		if !ok {
			return false
		}
		if isLeaf(sub) {
			return true
		}
		node = sub
	}
	return true
}

// without removes from set the leaves at paths, and the nodes left empty.
func without(set map[string]any, paths [][]string) {
	for _, path := range paths {
		removeLeaf(set, path)
	}
}

func removeLeaf(node map[string]any, path []string) bool {
	key := "f:" + path[0]
	sub, ok := node[key].(map[string]any)
	if !ok {
		return false
	}
	if len(path) == 1 {
		if isLeaf(sub) {
			delete(node, key)
		}
	} else if removeLeaf(sub, path[1:]) && isLeaf(sub) {
		delete(node, key)
	}
	return true
}

// valueAt is the value at path in o.
func valueAt(o map[string]any, path []string) (any, bool) {
	var cur any = o
	for _, name := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[name]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// removeAt deletes the field at path from o.
func removeAt(o map[string]any, path []string) {
	for _, name := range path[:len(path)-1] {
		next, ok := o[name].(map[string]any)
		if !ok {
			return
		}
		o = next
	}
	delete(o, path[len(path)-1])
}

// mergeInto sets src's fields in dst: maps field by field, any other value
// whole.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		sm, sok := v.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		if sok && dok {
			mergeInto(dm, sm)
			continue
		}
		dst[k] = deepCopy(v)
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// sameJSON compares values as JSON sees them (int64 8080 and float64 8080
// are one number).
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// fieldPath is ".spec.replicas" for a path.
func fieldPath(path []string) string { return "." + strings.Join(path, ".") }
