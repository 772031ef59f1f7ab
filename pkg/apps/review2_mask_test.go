package apps

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
)

// A Secret rotated since Flux applied, and the field that holds its value
// is inside a list that also changed length (a new env var beside it): the
// change is the whole list, and the old value must not show either.
func TestMaskValuesHidesOldSecretValuesInChangedLists(t *testing.T) {
	old := []any{map[string]any{"name": "PASSWORD", "value": "old-s3cret"}}
	nw := []any{map[string]any{"name": "PASSWORD", "value": "new-s3cret"}, map[string]any{"name": "MODE", "value": "x"}}
	res := &diff.Result{Objects: []diff.Object{{
		Action:  diff.Changed,
		Before:  "env:\n- name: PASSWORD\n  value: old-s3cret\n",
		After:   "env:\n- name: PASSWORD\n  value: new-s3cret\n- name: MODE\n  value: x\n",
		Changes: []diff.Change{{Path: ".spec.template.spec.containers[0].env", Old: old, New: nw}},
	}}}
	maskValues(res, []string{"new-s3cret"})
	o := res.Objects[0]
	if s := o.Before + o.After + fmt.Sprint(o.Changes); strings.Contains(s, "s3cret") {
		t.Fatalf("a Secret's value shows: %s", s)
	}
}
