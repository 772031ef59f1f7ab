package flux

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// InventoryEntry is one object a Kustomization applied (status.inventory).
type InventoryEntry struct {
	Namespace, Name, Group, Kind, Version string
}

// APIVersion is group/version ("v1" for the core group).
func (e InventoryEntry) APIVersion() string {
	if e.Group == "" {
		return e.Version
	}
	return e.Group + "/" + e.Version
}

// ParseInventoryID reads an inventory entry's id,
// "<namespace>_<name>_<group>_<kind>" (cli-utils' ObjMetadata: the core
// group empty, a cluster-scoped object's namespace empty, a colon in a name
// written "__"), split from both ends as the name may hold '_'-free parts
// only after transcoding. ok is false for an id that cannot be read.
func ParseInventoryID(id, version string) (InventoryEntry, bool) {
	first := strings.Index(id, "_")
	last := strings.LastIndex(id, "_")
	if first < 0 || last <= first {
		return InventoryEntry{}, false
	}
	kind := id[last+1:]
	rest := id[:last]
	second := strings.LastIndex(rest, "_")
	if second <= first {
		return InventoryEntry{}, false
	}
	group := rest[second+1:]
	name := rest[first+1 : second]
	if kind == "" || name == "" {
		return InventoryEntry{}, false
	}
	return InventoryEntry{Namespace: id[:first], Name: strings.ReplaceAll(name, "__", ":"), Group: group, Kind: kind, Version: version}, true
}

// Inventory reads a Kustomization's status.inventory.entries.
func Inventory(ks *unstructured.Unstructured) []InventoryEntry {
	entries, _, _ := unstructured.NestedSlice(ks.Object, "status", "inventory", "entries")
	var out []InventoryEntry
	for _, e := range entries {
		m, _ := e.(map[string]any)
		id, _ := m["id"].(string)
		v, _ := m["v"].(string)
		if ie, ok := ParseInventoryID(id, v); ok {
			out = append(out, ie)
		}
	}
	return out
}
