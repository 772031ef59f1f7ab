package diff

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// applyAll server-side applies YAML documents as the test's admin and
// deletes them when the test ends.
func applyAll(t *testing.T, ctx context.Context, dyn dynamic.Interface, k *kube.Client, docs ...string) {
	t.Helper()
	for _, src := range docs {
		o := decodeYAML(t, src)
		m, err := k.Mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			t.Fatal(err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		t.Cleanup(func() { _ = ri.Delete(context.Background(), o.GetName(), metav1.DeleteOptions{}) })
	}
}

// diffBoth diffs one object with the prediction and with the server alone.
func diffBoth(t *testing.T, ctx context.Context, k *kube.Client, src string) (predicted, server Object) {
	t.Helper()
	o := decodeYAML(t, src)
	ms, err := kube.FromObjects([]map[string]any{o.Object}, "test")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Force: true, DefaultNamespace: o.GetNamespace()}
	p, err := Run(ctx, k, ms, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.ServerOnly = true
	s, err := Run(ctx, k, ms, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p.Objects[0], s.Objects[0]
}

// TestForbiddenApplyIsAnError: an object the user may not patch is an error,
// as the dry run says, even when nothing would change; RBAC rules that name
// objects are honoured.
func TestForbiddenApplyIsAnError(t *testing.T) {
	c, ctx, admin, dyn := onCluster(t, 2*time.Minute)
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: rbac-test}\ndata: {a: \"1\"}\n"
	}
	applyAll(t, ctx, dyn, admin, "apiVersion: v1\nkind: Namespace\nmetadata: {name: rbac-test}\n", cm("mine"), cm("theirs"), `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: rbac-test}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
- {apiGroups: [""], resources: [configmaps], verbs: [patch], resourceNames: [mine]}
`, `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads, namespace: rbac-test}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
`, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: admission-reader}
rules:
- {apiGroups: [admissionregistration.k8s.io], resources: ["*"], verbs: [list]}
`, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-admission-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admission-reader}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
`)
	alice, dryRuns := countingClient(t, c, "alice")
	waitFor(t, ctx, func() bool {
		_, s := diffBoth(t, ctx, alice, cm("mine"))
		return s.Action == Unchanged
	})
	before := dryRuns.Load()
	p, s := diffBoth(t, ctx, alice, cm("theirs"))
	if p.Action != Failed || s.Action != Failed || !strings.Contains(p.Error, "forbidden") || !strings.Contains(s.Error, "forbidden") {
		t.Errorf("not allowed to patch: predicted %s %q, the server %s %q", p.Action, p.Error, s.Action, s.Error)
	}
	if dryRuns.Load()-before != 1 {
		t.Errorf("%d dry runs: the refusal was not known without one", dryRuns.Load()-before)
	}
	if p, s := diffBoth(t, ctx, alice, cm("mine")); p.Action != Unchanged || s.Action != Unchanged {
		t.Errorf("allowed by name: predicted %s %q, the server %s %q", p.Action, p.Error, s.Action, s.Error)
	}
}

// TestAdmissionThatMayActGoesToTheServer: a validating admission policy that
// refuses the object, and a mutating webhook that adds a label, both act on
// an apply that changes nothing; the verdict is the server's.
func TestAdmissionThatMayActGoesToTheServer(t *testing.T) {
	_, ctx, k, dyn := onCluster(t, 2*time.Minute)
	denied := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: denied, namespace: vap-test, labels: {deny: \"yes\"}}\ndata: {a: \"1\"}\n"
	applyAll(t, ctx, dyn, k, "apiVersion: v1\nkind: Namespace\nmetadata: {name: vap-test, labels: {admission-test: vap}}\n", denied, `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-deny-label}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [configmaps]}]
  validations:
  - expression: "!has(object.metadata.labels) || !('deny' in object.metadata.labels)"
    message: objects labelled deny are refused
`, `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-deny-label}
spec:
  policyName: no-deny-label
  validationActions: [Deny]
  matchResources: {namespaceSelector: {matchLabels: {admission-test: vap}}}
`)
	waitFor(t, ctx, func() bool {
		_, s := diffBoth(t, ctx, k, denied)
		return s.Action == Failed
	})
	if p, s := diffBoth(t, ctx, k, denied); p.Action != Failed || !strings.Contains(p.Error, "refused") {
		t.Errorf("refused by a policy: predicted %s %q, the server %s %q", p.Action, p.Error, s.Action, s.Error)
	}

	// A mutating webhook, served here, that labels every ConfigMap it sees.
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &review)
		req, _ := review["request"].(map[string]any)
		patch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/metadata/labels/mutated","value":"yes"}]`))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"response": map[string]any{"uid": req["uid"], "allowed": true, "patchType": "JSONPatch", "patch": patch},
		})
	}))
	defer hook.Close()
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}))
	labelled := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: wh-test, labels: {app: x}}\ndata: {a: \"1\"}\n"
	applyAll(t, ctx, dyn, k, "apiVersion: v1\nkind: Namespace\nmetadata: {name: wh-test, labels: {admission-test: webhook}}\n", labelled, `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: add-label}
webhooks:
- name: add-label.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  namespaceSelector: {matchLabels: {admission-test: webhook}}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [configmaps]}]
  clientConfig: {url: "`+hook.URL+`/mutate", caBundle: `+ca+`}
`)
	waitFor(t, ctx, func() bool {
		_, s := diffBoth(t, ctx, k, labelled)
		return s.Action == Changed
	})
	if p, s := diffBoth(t, ctx, k, labelled); p.Action != Changed || strings.Join(p.ChangedPaths, ",") != ".metadata.labels.mutated" {
		t.Errorf("mutated by a webhook: predicted %s %v, the server %s %v", p.Action, p.ChangedPaths, s.Action, s.ChangedPaths)
	}
}

// TestUnreadableAdmissionSendsAllToTheServer: a user who may not list the
// cluster's webhooks and policies gets the server's verdicts for every
// object, and a note that says why it was slower.
func TestUnreadableAdmissionSendsAllToTheServer(t *testing.T) {
	c, ctx, admin, dyn := onCluster(t, 2*time.Minute)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bobs, namespace: bob-test}\ndata: {a: \"1\"}\n"
	applyAll(t, ctx, dyn, admin, "apiVersion: v1\nkind: Namespace\nmetadata: {name: bob-test}\n", cm, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: editor, namespace: bob-test}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, patch]}
`, `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-edits, namespace: bob-test}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: editor}
subjects: [{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}]
`)
	bob, dryRuns := countingClient(t, c, "bob")
	waitFor(t, ctx, func() bool {
		_, s := diffBoth(t, ctx, bob, cm)
		return s.Action == Unchanged
	})
	before := dryRuns.Load()
	res, err := Run(ctx, bob, manifests(t, cm), Options{Force: true, DefaultNamespace: "bob-test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects[0].Action != Unchanged || dryRuns.Load()-before != 1 {
		t.Errorf("%s after %d dry runs, want unchanged after one", res.Objects[0].Action, dryRuns.Load()-before)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "dry-run on the server") || !strings.Contains(res.Notes[0], "forbidden") {
		t.Errorf("notes %q", res.Notes)
	}
}
