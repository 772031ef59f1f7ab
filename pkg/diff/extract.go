package diff

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// extractOwned returns the part of a live object that field manager owns
// through server-side apply: the apply configuration it last applied, with
// the live values. It reads the managedFields entry (FieldsV1) directly, so
// no OpenAPI schema is needed. ok is false when the manager has no Apply
// entry for the object's apiVersion, or the entry cannot be read.
//
// FieldsV1 paths: "f:<field>" a map field, "k:<json>" the list element whose
// key fields have these values, "v:<json>" the set element with this value,
// "i:<n>" a list index, "." the node itself; an empty {} owns the whole value.
func extractOwned(live *unstructured.Unstructured, manager string) (map[string]any, bool) {
	for _, mf := range managedEntries(live) {
		if mf.manager != manager || mf.operation != "Apply" || mf.subresource != "" || mf.apiVersion != live.GetAPIVersion() || mf.fields == nil {
			continue
		}
		out, ok := extractNode(live.Object, mf.fields)
		if !ok {
			return nil, false
		}
		m, _ := out.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m["apiVersion"] = live.GetAPIVersion()
		m["kind"] = live.GetKind()
		meta, _ := m["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			m["metadata"] = meta
		}
		meta["name"] = live.GetName()
		if ns := live.GetNamespace(); ns != "" {
			meta["namespace"] = ns
		}
		return m, true
	}
	return nil, false
}

// managedEntry is one managedFields entry as the live object holds it.
type managedEntry struct {
	manager, operation, apiVersion, subresource string
	// fields is the FieldsV1 tree, nil when the entry has none.
	fields map[string]any
}

// managedEntries reads the managedFields of o from its map, as it is:
// Unstructured.GetManagedFields converts them through JSON on every call,
// which costs more than the rest of a prediction.
func managedEntries(o *unstructured.Unstructured) []managedEntry {
	list, _, _ := unstructured.NestedSlice(o.Object, "metadata", "managedFields")
	out := make([]managedEntry, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		e := managedEntry{manager: str("manager"), operation: str("operation"), apiVersion: str("apiVersion"), subresource: str("subresource")}
		if str("fieldsType") == "FieldsV1" {
			e.fields, _ = m["fieldsV1"].(map[string]any)
		}
		out = append(out, e)
	}
	return out
}

func extractNode(live any, fields map[string]any) (any, bool) {
	switch l := live.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range fields {
			if k == "." {
				continue
			}
			name, ok := strings.CutPrefix(k, "f:")
			if !ok {
				return nil, false
			}
			v, present := l[name]
			if !present {
				return nil, false // owned but absent: let the dry run decide
			}
			subFields, _ := sub.(map[string]any)
			if len(withoutDot(subFields)) == 0 {
				out[name] = v
				continue
			}
			ev, ok := extractNode(v, subFields)
			if !ok {
				return nil, false
			}
			out[name] = ev
		}
		return out, true
	case []any:
		var out []any
		for i, e := range l {
			for k, sub := range fields {
				if !elementMatches(k, i, e) {
					continue
				}
				subFields, _ := sub.(map[string]any)
				if len(withoutDot(subFields)) == 0 {
					out = append(out, e)
					continue
				}
				ev, ok := extractNode(e, subFields)
				if !ok {
					return nil, false
				}
				out = append(out, ev)
			}
		}
		if len(out) != countElements(fields) {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

// elementMatches reports whether the list element e at index i is the one a
// FieldsV1 key names.
func elementMatches(key string, i int, e any) bool {
	switch {
	case strings.HasPrefix(key, "i:"):
		n, err := strconv.Atoi(key[2:])
		return err == nil && n == i
	case strings.HasPrefix(key, "v:"):
		var v any
		if json.Unmarshal([]byte(key[2:]), &v) != nil {
			return false
		}
		return jsonEqual(v, e)
	case strings.HasPrefix(key, "k:"):
		var keys map[string]any
		m, ok := e.(map[string]any)
		if !ok || json.Unmarshal([]byte(key[2:]), &keys) != nil {
			return false
		}
		for f, want := range keys {
			if !jsonEqual(want, m[f]) {
				return false
			}
		}
		return true
	}
	return false
}

func countElements(fields map[string]any) int {
	n := 0
	for k := range fields {
		if k != "." {
			n++
		}
	}
	return n
}

func withoutDot(m map[string]any) map[string]any {
	if _, ok := m["."]; !ok {
		return m
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != "." {
			out[k] = v
		}
	}
	return out
}

// jsonEqual compares values as JSON sees them, so that 8080 from a key and
// int64(8080) from an object are equal.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// unchangedByApply reports whether applying desired as manager would change
// nothing: the manager's owned fields of live already equal desired
// (status included when it is an ordinary field, keepStatus).
func unchangedByApply(live, desired *unstructured.Unstructured, manager string, keepStatus bool) bool {
	owned, ok := extractOwned(live, manager)
	if !ok {
		return false
	}
	return reflect.DeepEqual(applyView(&unstructured.Unstructured{Object: owned}, keepStatus), applyView(desired, keepStatus))
}
