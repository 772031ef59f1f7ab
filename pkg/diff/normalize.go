package diff

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
)

// lastApplied is kubectl's client-side apply annotation; on a Secret it holds
// the whole Secret, values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// normalizer prepares objects for comparison: server bookkeeping removed,
// ignored fields removed, Secret values masked.
type normalizer struct {
	showStatus  bool
	showSecrets bool
	ignore      []IgnoreRule
	key         []byte // for Secret values' hashes (maskSecret)
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
		if r.applies(o) && r.Path != nil {
			removePath(c, r.Path)
		}
	}
	if o.GetKind() == "Secret" && (o.GetAPIVersion() == "v1") && !n.showSecrets {
		maskSecret(c, n.key, salt)
	}
	return c
}

// runKey keys the hashes of Secret values when Options.MaskKey does not: a
// key that could be known (a constant, the object's name printed beside the
// hash) would let anyone who reads the output (a CI log, a merge request
// comment) test guesses of a weak password offline.
var runKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}()

// maskKeyFile is the name of the per-user key in MaskKey's directory.
const maskKeyFile = "diff-mask.key"

// MaskKey is the user's key for the hashes of Secret values, kept 0600 in
// dir (made when missing), so that two runs by one user show the same
// hashes while the output alone lets no one test a guess; nil when it
// cannot be read or made (each run then has a key of its own).
func MaskKey(dir string) []byte {
	path := filepath.Join(dir, maskKeyFile)
	// Windows reports no permission bits but write (0666 or 0444): the
	// check means nothing there.
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && (fi.Mode().Perm()&0o077 == 0 || runtime.GOOS == "windows") {
		if k, err := os.ReadFile(path); err == nil && len(k) == 32 {
			return k
		}
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	if os.MkdirAll(dir, 0o700) != nil || secretfile.Write(path, k) != nil {
		return nil
	}
	return k
}

// maskSecret replaces each value of data and stringData with a short hash
// of the decoded value, keyed by key (runKey when nil) and the object
// (salt), so that changed and unchanged keys show as such, without the value
// being readable or guessable.
func maskSecret(c map[string]any, key []byte, salt string) {
	if key == nil {
		key = runKey
	}
	mac := func(k string, value []byte) string {
		h := hmac.New(sha256.New, append(append([]byte("kubectl-gitlab-agent diff\x00"), key...), salt...))
		h.Write([]byte(k))
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

// Change is one difference: the path, and the old and new values as the
// normalised objects have them (Secret values masked). A value absent on one
// side is nil there.
type Change struct {
	Path string `json:"path"`
	Old  any    `json:"old,omitempty"`
	New  any    `json:"new,omitempty"`
}

// changedPaths lists the paths where a and b differ, in sorted order.
func changedPaths(a, b any) []string {
	var out []string
	for _, c := range changes(a, b) {
		out = append(out, c.Path)
	}
	return out
}

// changes lists where a and b differ, sorted by path: maps key by key, lists
// of equal length element by element, anything else as a whole.
func changes(a, b any) []Change {
	var out []Change
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			for k, av := range am {
				walk(path+fieldPath(k), av, bm[k])
			}
			for k, bv := range bm {
				if _, inA := am[k]; !inA {
					walk(path+fieldPath(k), nil, bv)
				}
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
			out = append(out, Change{Path: path, Old: a, New: b})
		}
	}
	walk("", a, b)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_$-]+$`)

func fieldPath(k string) string {
	if plainKeyRE.MatchString(k) {
		return "." + k
	}
	return "['" + k + "']"
}
