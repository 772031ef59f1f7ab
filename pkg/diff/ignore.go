package diff

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// IgnoreRule drops fields that others own on purpose from both sides of a
// comparison: a path (.spec.replicas under an autoscaler), or every field
// that given field managers own in the live object (Argo CD's
// managedFieldsManagers). It applies to the objects its group, kind, name
// and namespace match ("" and "*" match any).
type IgnoreRule struct {
	Group, Kind, Name, Namespace string
	Path                         []pathSeg
	Managers                     []string
	Text                         string
}

type pathSeg struct {
	key   string
	index int // -1: a map key; -2: every element; -3: key or index (a JSON pointer's)
}

var segRE = regexp.MustCompile(`^\.([A-Za-z0-9_$-]+)|^\[(\d+|\*)\]|^\['([^']*)'\]|^\["([^"]*)"\]`)

// ParseIgnoreRule reads --ignore-field KIND:JSONPATH, with paths such as
// .spec.replicas, .metadata.annotations['example.com/x'] or
// .spec.template.spec.containers[*].image.
func ParseIgnoreRule(s string) (IgnoreRule, error) {
	kind, path, ok := strings.Cut(s, ":")
	if !ok || kind == "" || path == "" {
		return IgnoreRule{}, fmt.Errorf("--ignore-field %q: want KIND:JSONPATH, e.g. Deployment:.spec.replicas", s)
	}
	r := IgnoreRule{Kind: kind, Group: "*", Text: s}
	rest := path
	for rest != "" {
		m := segRE.FindStringSubmatch(rest)
		if m == nil {
			return IgnoreRule{}, fmt.Errorf("--ignore-field %q: cannot read the path at %q", s, rest)
		}
		switch {
		case m[1] != "":
			r.Path = append(r.Path, pathSeg{key: m[1], index: -1})
		case m[2] == "*":
			r.Path = append(r.Path, pathSeg{index: -2})
		case m[2] != "":
			n, _ := strconv.Atoi(m[2])
			r.Path = append(r.Path, pathSeg{index: n})
		case m[3] != "" || m[4] != "":
			r.Path = append(r.Path, pathSeg{key: m[3] + m[4], index: -1})
		}
		rest = rest[len(m[0]):]
	}
	return r, nil
}

// ignoreFileEntry is one entry of an --ignore-file, in Argo CD's
// ignoreDifferences shape.
type ignoreFileEntry struct {
	Group                 *string  `json:"group"`
	Kind                  string   `json:"kind"`
	Name                  string   `json:"name"`
	Namespace             string   `json:"namespace"`
	JSONPointers          []string `json:"jsonPointers"`
	ManagedFieldsManagers []string `json:"managedFieldsManagers"`
}

// ParseIgnoreFile reads an --ignore-file: a YAML list of entries with group,
// kind, name and namespace to match (any when left out; group "" is the
// core group), and jsonPointers (RFC 6901 paths) or managedFieldsManagers
// (field managers whose fields are left out), as Argo CD's
// ignoreDifferences.
func ParseIgnoreFile(name string, data []byte) ([]IgnoreRule, error) {
	var entries []ignoreFileEntry
	if err := yaml.UnmarshalStrict(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: %v (want a list of entries with kind, jsonPointers or managedFieldsManagers)", name, err)
	}
	var out []IgnoreRule
	for i, e := range entries {
		where := fmt.Sprintf("%s: entry %d", name, i+1)
		if len(e.JSONPointers) == 0 && len(e.ManagedFieldsManagers) == 0 {
			return nil, fmt.Errorf("%s: give jsonPointers or managedFieldsManagers", where)
		}
		base := IgnoreRule{Group: "*", Kind: e.Kind, Name: e.Name, Namespace: e.Namespace}
		if e.Group != nil {
			base.Group = *e.Group
		}
		if len(e.ManagedFieldsManagers) > 0 {
			r := base
			r.Managers, r.Text = e.ManagedFieldsManagers, where+" managedFieldsManagers"
			out = append(out, r)
		}
		for _, p := range e.JSONPointers {
			path, err := parsePointer(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			r := base
			r.Path, r.Text = path, where+" "+p
			out = append(out, r)
		}
	}
	return out, nil
}

// parsePointer reads an RFC 6901 JSON pointer; a numeric segment is a list
// index or a map key, whichever the object has there.
func parsePointer(p string) ([]pathSeg, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("JSON pointer %q must start with /", p)
	}
	var out []pathSeg
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		seg := pathSeg{key: tok, index: -1}
		if n, err := strconv.Atoi(tok); err == nil && n >= 0 {
			seg.index = -3
		}
		out = append(out, seg)
	}
	return out, nil
}

func (r IgnoreRule) applies(o *unstructured.Unstructured) bool {
	gv := o.GroupVersionKind()
	match := func(want, got string) bool { return want == "" || want == "*" || want == got }
	group := r.Group == "*" || r.Group == gv.Group
	return group && match(r.Kind, gv.Kind) && match(r.Name, o.GetName()) && match(r.Namespace, o.GetNamespace())
}

// removePath deletes the path from v.
func removePath(v any, path []pathSeg) {
	if len(path) == 0 {
		return
	}
	seg, last := path[0], len(path) == 1
	switch t := v.(type) {
	case map[string]any:
		if seg.index != -1 && seg.index != -3 {
			return
		}
		if last {
			delete(t, seg.key)
			return
		}
		removePath(t[seg.key], path[1:])
	case []any:
		idx := seg.index
		if idx == -3 {
			idx, _ = strconv.Atoi(seg.key)
		}
		switch {
		case idx == -2:
			for _, e := range t {
				removePath(e, path[1:])
			}
		case idx >= 0 && idx < len(t) && !last:
			removePath(t[idx], path[1:])
		}
	}
}

// dropManaged removes, from the normalised before and after, every field
// that the rules' field managers own in live.
func dropManaged(rules []IgnoreRule, live *unstructured.Unstructured, sides ...map[string]any) {
	if live == nil {
		return
	}
	for _, r := range rules {
		if len(r.Managers) == 0 || !r.applies(live) {
			continue
		}
		for _, mf := range live.GetManagedFields() {
			if !slices.Contains(r.Managers, mf.Manager) || mf.FieldsV1 == nil {
				continue
			}
			var fields map[string]any
			if json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields) != nil {
				continue
			}
			for _, side := range sides {
				removeOwned(side, fields)
			}
		}
	}
}

// removeOwned deletes from v what a FieldsV1 tree names (see extractOwned for
// the path forms) and returns what is left of v.
func removeOwned(v any, fields map[string]any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range fields {
			name, ok := strings.CutPrefix(k, "f:")
			if !ok {
				continue
			}
			subFields, _ := sub.(map[string]any)
			if len(withoutDot(subFields)) == 0 {
				delete(t, name)
				continue
			}
			if child, present := t[name]; present {
				t[name] = removeOwned(child, subFields)
			}
		}
		return t
	case []any:
		out := t[:0:0]
		for i, e := range t {
			keep := e
			for k, sub := range fields {
				if k == "." || !elementMatches(k, i, e) {
					continue
				}
				subFields, _ := sub.(map[string]any)
				if len(withoutDot(subFields)) == 0 {
					keep = nil
				} else {
					keep = removeOwned(e, subFields)
				}
				break
			}
			if keep != nil {
				out = append(out, keep)
			}
		}
		return out
	}
	return v
}
