package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// setCRD is a CRD of crdset.example.com (scope Cluster or Namespaced) whose
// spec.size is required and at least 0.
func setCRD(plural, kind, scope string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s.crdset.example.com}
spec:
  group: crdset.example.com
  scope: %[3]s
  names: {plural: %[1]s, singular: %[4]s, kind: %[2]s}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 0}
`, plural, kind, scope, strings.ToLower(kind))
}

// Issue 26, item 4: a set that holds a CRD and objects of it, the CRD not
// yet in the cluster, gets the verdict and exit code kubectl diff
// --server-side gives each object once the CRD is there (kubectl diff
// itself cannot map them before: "ensure CRDs are installed first"). Each
// case is diffed with the CRD absent, then kubectl diffs the object alone
// with the CRD applied; then, the CRD deleted again, the plugin diffs once
// more: its discovery cache (kubectl's, in the shared HOME) still knows the
// kinds, which the cluster no longer serves.
func TestDiffCreatedWithItsCRDAsKubectlSees(t *testing.T) {
	needCluster(t)
	crds := setCRD("widgets", "Widget", "Cluster") + "---\n" + setCRD("gadgets", "Gadget", "Namespaced")
	widget := "apiVersion: crdset.example.com/v1\nkind: Widget\nmetadata: {name: %s}\n%s"
	gadget := "apiVersion: crdset.example.com/v1\nkind: Gadget\nmetadata: {name: %s%s}\nspec: {size: %s}\n"
	cases := []struct {
		name, object string
		args         []string
	}{
		{"w-valid", fmt.Sprintf(widget, "w-valid", "spec: {size: 1}\n"), nil},
		{"w-no-spec", fmt.Sprintf(widget, "w-no-spec", ""), nil},
		{"w-unknown-field", fmt.Sprintf(widget, "w-unknown-field", "spec: {size: 1, extra: 2}\n"), nil},
		{"w-top-unknown", fmt.Sprintf(widget, "w-top-unknown", "spec: {size: 1}\nother: 1\n"), nil},
		{"w-namespace-given", "apiVersion: crdset.example.com/v1\nkind: Widget\nmetadata: {name: w-namespace-given, namespace: default}\nspec: {size: 1}\n", nil},
		{"w-invalid", fmt.Sprintf(widget, "w-invalid", "spec: {size: -1}\n"), nil},
		{"g-default", fmt.Sprintf(gadget, "g-default", ", namespace: default", "1"), nil},
		{"g-no-namespace", fmt.Sprintf(gadget, "g-no-namespace", "", "1"), nil},
		{"g-missing-namespace", fmt.Sprintf(gadget, "g-missing-namespace", ", namespace: nowhere", "1"), nil},
		{"g-other-than-n", fmt.Sprintf(gadget, "g-other-than-n", ", namespace: default", "1"), []string{"-n", "kube-public"}},
		{"g-n-missing", fmt.Sprintf(gadget, "g-n-missing", "", "1"), []string{"-n", "nowhere"}},
		{"g-unknown-field", "apiVersion: crdset.example.com/v1\nkind: Gadget\nmetadata: {name: g-unknown-field}\nspec: {size: 1, extra: x}\n", nil},
		{"g-invalid", fmt.Sprintf(gadget, "g-invalid", "", "-3"), nil},
	}
	type verdict struct {
		code   int
		action string // the object's, for the plugin
		stderr string
	}
	ours := func(object string, args []string) verdict {
		t.Helper()
		r := runCmd(t, crds+"---\n"+object, kubectl, append([]string{"gitlab-agent", "diff", "-f", "-", "-o", "json"}, args...)...)
		var doc struct {
			Objects []struct{ Kind, Action string } `json:"objects"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("diff -o json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		v := verdict{code: r.code, stderr: r.stderr}
		for _, o := range doc.Objects {
			switch {
			case o.Kind == "CustomResourceDefinition" && o.Action != "created":
				t.Errorf("a CRD not in the cluster: %s", o.Action)
			case o.Kind != "CustomResourceDefinition":
				v.action = o.Action
			}
		}
		return v
	}
	kubectlDiff := func(object string, args []string) verdict {
		t.Helper()
		r := runCmd(t, object, kubectl, append([]string{"diff", "--server-side", "--field-manager=kubectl-gitlab-agent", "--force-conflicts", "-f", "-"}, args...)...)
		return verdict{code: r.code, stderr: r.stderr}
	}

	before := map[string]verdict{}
	for _, c := range cases {
		before[c.name] = ours(c.object, c.args)
	}
	if r := runCmd(t, crds, kubectl, "apply", "--server-side", "-f", "-"); r.code != 0 {
		t.Fatalf("applying the CRDs: %s", r.stderr)
	}
	if r := runCmd(t, "", kubectl, "wait", "--for=condition=established", "crd/widgets.crdset.example.com", "crd/gadgets.crdset.example.com"); r.code != 0 {
		t.Fatalf("waiting for the CRDs: %s", r.stderr)
	}
	theirs := map[string]verdict{}
	for _, c := range cases {
		theirs[c.name] = kubectlDiff(c.object, c.args)
	}
	if r := runCmd(t, crds, kubectl, "delete", "--wait", "-f", "-"); r.code != 0 {
		t.Fatalf("deleting the CRDs: %s", r.stderr)
	}
	for _, c := range cases {
		k := theirs[c.name]
		want := map[int]string{1: "created", 2: "error"}[k.code]
		if want == "" {
			t.Errorf("%s: kubectl diff exit %d: %s", c.name, k.code, k.stderr)
			continue
		}
		for when, v := range map[string]verdict{"the CRD never applied": before[c.name], "the CRD deleted": ours(c.object, c.args)} {
			if v.code != k.code || v.action != want {
				t.Errorf("%s (%s): exit %d, %s; kubectl diff --server-side with the CRD applied: exit %d (%s)\nours: %s", c.name, when, v.code, v.action, k.code, strings.TrimSpace(k.stderr), strings.TrimSpace(v.stderr))
			}
		}
		t.Logf("%s: exit %d, %s; kubectl: %s", c.name, before[c.name].code, before[c.name].action, strings.TrimSpace(k.stderr))
	}
}
