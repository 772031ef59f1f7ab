package diff

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// lastApplied is kubectl's client-side apply annotation; on a Secret it holds
// the whole Secret, values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// IgnoreRule drops a field that others own on purpose from both sides, e.g.
// Deployment:.spec.replicas under an autoscaler.
type IgnoreRule struct {
	Kind string // a kind, or "*" for every kind
	Path []pathSeg
	Text string
}

type pathSeg struct {
	key   string
	index int // -1: a map key; -2: every element
}

var segRE = regexp.MustCompile(`^\.([A-Za-z0-9_$-]+)|^\[(\d+|\*)\]|^\['([^']*)'\]|^\["([^"]*)"\]`)

// ParseIgnoreRule reads KIND:JSONPATH, with paths such as .spec.replicas,
// .metadata.annotations['example.com/x'] or .spec.template.spec.containers[*].image.
func ParseIgnoreRule(s string) (IgnoreRule, error) {
	kind, path, ok := strings.Cut(s, ":")
	if !ok || kind == "" || path == "" {
		return IgnoreRule{}, fmt.Errorf("--ignore-field %q: want KIND:JSONPATH, e.g. Deployment:.spec.replicas", s)
	}
	r := IgnoreRule{Kind: kind, Text: s}
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

func (r IgnoreRule) applies(kind string) bool { return r.Kind == "*" || r.Kind == kind }

// remove deletes the rule's path from v.
func removePath(v any, path []pathSeg) {
	if len(path) == 0 {
		return
	}
	seg, last := path[0], len(path) == 1
	switch t := v.(type) {
	case map[string]any:
		if seg.index != -1 {
			return
		}
		if last {
			delete(t, seg.key)
			return
		}
		removePath(t[seg.key], path[1:])
	case []any:
		switch {
		case seg.index == -2:
			for _, e := range t {
				removePath(e, path[1:])
			}
		case seg.index >= 0 && seg.index < len(t) && !last:
			removePath(t[seg.index], path[1:])
		}
	}
}

// normalizer prepares objects for comparison: server bookkeeping removed,
// ignored fields removed, Secret values masked.
type normalizer struct {
	showStatus  bool
	showSecrets bool
	ignore      []IgnoreRule
}

func (n normalizer) normalize(o *unstructured.Unstructured, salt string) map[string]any {
	if o == nil {
		return nil
	}
	c := o.DeepCopy().Object
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c, "metadata", f)
	}
	if !n.showStatus {
		delete(c, "status")
	}
	if ann, ok, _ := unstructured.NestedStringMap(c, "metadata", "annotations"); ok && len(ann) == 0 {
		unstructured.RemoveNestedField(c, "metadata", "annotations")
	}
	for _, r := range n.ignore {
		if r.applies(o.GetKind()) {
			removePath(c, r.Path)
		}
	}
	if o.GetKind() == "Secret" && (o.GetAPIVersion() == "v1") && !n.showSecrets {
		maskSecret(c, salt)
	}
	return c
}

// maskSecret replaces each value of data and stringData with a short keyed
// hash of the decoded value, so that changed and unchanged keys show as such
// and two runs can be compared, without the value being readable.
func maskSecret(c map[string]any, salt string) {
	mac := func(key string, value []byte) string {
		h := hmac.New(sha256.New, []byte("kubectl-gitlab-agent diff\x00"+salt))
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write(value)
		return "<secret sha256:" + hex.EncodeToString(h.Sum(nil))[:10] + ">"
	}
	if data, ok := c["data"].(map[string]any); ok {
		for k, v := range data {
			s, _ := v.(string)
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				raw = []byte(s)
			}
			data[k] = mac(k, raw)
		}
	}
	if data, ok := c["stringData"].(map[string]any); ok {
		for k, v := range data {
			s, _ := v.(string)
			data[k] = mac(k, []byte(s))
		}
	}
	if meta, ok := c["metadata"].(map[string]any); ok {
		if ann, ok := meta["annotations"].(map[string]any); ok {
			if _, ok := ann[lastApplied]; ok {
				ann[lastApplied] = "<masked: holds the Secret>"
			}
		}
	}
}

// changedPaths lists the paths where a and b differ, in sorted order.
func changedPaths(a, b any) []string {
	var out []string
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			keys := map[string]bool{}
			for k := range am {
				keys[k] = true
			}
			for k := range bm {
				keys[k] = true
			}
			for k := range keys {
				walk(path+fieldPath(k), am[k], bm[k])
			}
			return
		}
		al, aok := a.([]any)
		bl, bok := b.([]any)
		if aok && bok && len(al) == len(bl) {
			for i := range al {
				walk(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			if path == "" {
				path = "."
			}
			out = append(out, path)
		}
	}
	walk("", a, b)
	sort.Strings(out)
	return out
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_$-]+$`)

func fieldPath(k string) string {
	if plainKeyRE.MatchString(k) {
		return "." + k
	}
	return "['" + k + "']"
}
