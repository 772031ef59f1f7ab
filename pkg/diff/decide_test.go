package diff

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// The per-object decision on values alone: no cluster, not even the fake.

// stateOf is the state of one object: desired from its manifest, live as
// given ("" none).
func stateOf(t *testing.T, desired, live string) objectState {
	t.Helper()
	ms := manifests(t, desired)
	m := ms[0]
	ref := m.Ref
	if ref.Namespace == "" {
		ref.Namespace = "default"
	}
	tg := kube.Target{Manifest: m, Ref: ref}
	s := objectState{Target: tg}
	var err error
	if s.Desired, err = tg.Object(); err != nil {
		t.Fatal(err)
	}
	if live != "" {
		s.Live = decodeYAML(t, live)
	}
	return s
}

// liveOf is doc as the cluster holds it: namespace default, a UID, a
// resourceVersion and managedFields (bookkeeping the comparison leaves out).
func liveOf(doc string) string {
	return strings.Replace(doc, "metadata: {name: ", "metadata: {namespace: default, uid: u-1, resourceVersion: '7', managedFields: [{manager: x, operation: Apply}], name: ", 1)
}

func TestDecide(t *testing.T) {
	secret := func(value string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: " + value + "}\n"
	}
	withStatus := func(doc, status string) string { return doc + "status: {phase: " + status + "}\n" }
	boom := errors.New("boom")
	type tc struct {
		name          string
		desired, live string // live "": none
		readErr       error
		statusIsField bool
		show          bool // Secret values shown
		ignore        []IgnoreRule
		answer        *answer // nil: not asked
		merged        string  // the dry run's result, as answer.Merged
		// want: undecided, or the action with text in its error or note
		// and the changed paths.
		undecided bool
		action    Action
		text      string
		paths     []string
		check     func(t *testing.T, o Object)
	}
	cm := configMap("web", "a: '1'")
	for _, c := range []tc{
		{name: "not asked yet", desired: cm, live: liveOf(cm), undecided: true},
		{name: "absent, not asked yet", desired: cm, undecided: true},
		{name: "read failed", desired: cm, readErr: boom, action: Failed, text: "reading the live object: boom"},
		{name: "created", desired: cm, answer: &answer{}, merged: liveOf(cm), action: Created, paths: []string{"."},
			check: func(t *testing.T, o Object) {
				if o.Before != "" || !strings.Contains(o.After, "name: web") || strings.Contains(o.After, "resourceVersion") {
					t.Errorf("created: before %q after %q", o.Before, o.After)
				}
			}},
		{name: "unchanged by the dry run", desired: cm, live: liveOf(cm), answer: &answer{},
			merged: strings.Replace(liveOf(cm), "'7'", "'8'", 1), action: Unchanged},
		{name: "known unchanged", desired: cm, live: liveOf(cm), answer: &answer{Unchanged: true}, action: Unchanged},
		{name: "changed", desired: configMap("web", "a: '2'"), live: liveOf(cm), answer: &answer{},
			merged: liveOf(configMap("web", "a: '2'")), action: Changed, paths: []string{".data.a"},
			check: func(t *testing.T, o Object) {
				if len(o.Changes) != 1 || o.Changes[0].Old != "1" || o.Changes[0].New != "2" || !strings.Contains(o.Before, `a: "1"`) || !strings.Contains(o.After, `a: "2"`) {
					t.Errorf("changed: %+v", o)
				}
			}},
		{name: "changed, but ignored", desired: configMap("web", "a: '2'"), live: liveOf(cm), answer: &answer{},
			ignore: []IgnoreRule{mustRule(t, "ConfigMap:.data.a")}, merged: liveOf(configMap("web", "a: '2'")), action: Unchanged},
		{name: "refused", desired: cm, live: liveOf(cm), answer: &answer{Refused: "you cannot patch web"}, action: Failed, text: "forbidden: you cannot patch web"},
		{name: "dry run failed", desired: cm, answer: &answer{Err: errors.New("admission webhook said\n no")}, action: Failed, text: "admission webhook said no"},
		{name: "the set's outcome", desired: cm, answer: &answer{Set: &Object{Action: Created, Note: "created with its Namespace"}}, action: Created, text: "created with its Namespace"},
		{name: "status ignored where it is a subresource's", desired: cm, live: withStatus(liveOf(cm), "a"), answer: &answer{},
			merged: withStatus(liveOf(cm), "b"), action: Unchanged},
		{name: "status compared where it is a field", desired: cm, live: withStatus(liveOf(cm), "a"), answer: &answer{}, statusIsField: true,
			merged: withStatus(liveOf(cm), "b"), action: Changed, paths: []string{".status.phase"}},
		{name: "Secret masked", desired: secret("bmV3"), live: liveOf(secret("b2xk")), answer: &answer{},
			merged: liveOf(secret("bmV3")), action: Changed, paths: []string{".data.password"},
			check: func(t *testing.T, o Object) {
				text := o.Before + o.After + fmt.Sprint(o.Changes)
				if strings.Contains(text, "bmV3") || strings.Contains(text, "b2xk") || !strings.Contains(o.After, "<secret sha256:") {
					t.Errorf("masked: %+v", o)
				}
			}},
		{name: "Secret shown", desired: secret("bmV3"), live: liveOf(secret("b2xk")), answer: &answer{}, show: true,
			merged: liveOf(secret("bmV3")), action: Changed, paths: []string{".data.password"},
			check: func(t *testing.T, o Object) {
				if !strings.Contains(o.Before, "b2xk") || !strings.Contains(o.After, "bmV3") {
					t.Errorf("shown: %+v", o)
				}
			}},
		{name: "Secret unchanged, masked alike", desired: secret("b2xk"), live: liveOf(secret("b2xk")), answer: &answer{},
			merged: strings.Replace(liveOf(secret("b2xk")), "'7'", "'8'", 1), action: Unchanged},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := stateOf(t, c.desired, c.live)
			s.ReadErr, s.StatusIsField = c.readErr, c.statusIsField
			if c.answer != nil && c.merged != "" {
				c.answer.Merged = decodeYAML(t, c.merged)
			}
			d := decider{n: normalizer{showSecrets: c.show, ignore: c.ignore, key: []byte("k")}, ignore: c.ignore}
			o, decided := d.decide(s, c.answer)
			if decided == c.undecided {
				t.Fatalf("decided %v: %+v", decided, o)
			}
			if c.undecided {
				return
			}
			if o.Action != c.action || !strings.Contains(o.Error+o.Note, c.text) || !slices.Equal(o.ChangedPaths, c.paths) {
				t.Errorf("%s %q %q %v; want %s saying %q, paths %v", o.Action, o.Error, o.Note, o.ChangedPaths, c.action, c.text, c.paths)
			}
			if c.answer == nil || c.answer.Set == nil {
				if o.Ref != s.Target.Ref || o.Origin != "test" {
					t.Errorf("ref %v origin %q", o.Ref, o.Origin)
				}
			}
			if c.check != nil {
				c.check(t, o)
			}
		})
	}
}

// TestDecideDesiredUnreadable: a manifest that cannot be decoded is its
// object's error, before anything is asked.
func TestDecideDesiredUnreadable(t *testing.T) {
	s := objectState{Target: kube.Target{Ref: kube.Ref{Kind: "ConfigMap", Name: "x"}}, DesiredErr: errors.New("test: bad JSON")}
	if o, decided := (decider{}).decide(s, nil); !decided || o.Action != Failed || o.Error != "test: bad JSON" {
		t.Errorf("%v %+v", decided, o)
	}
}

// TestDecideSaltsByUID: the same Secret value hashes alike for one live
// object across runs (its UID), whatever the answer's bookkeeping.
func TestDecideSaltsByUID(t *testing.T) {
	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: bmV3}\n"
	s := stateOf(t, secret, "")
	if s.salt() != s.Target.Ref.String() {
		t.Errorf("absent: salt %q", s.salt())
	}
	s.Live = &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"uid": "u-1"}}}
	if s.salt() != "u-1" {
		t.Errorf("live: salt %q", s.salt())
	}
}

func mustRule(t *testing.T, s string) IgnoreRule {
	t.Helper()
	r, err := ParseIgnoreRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
