package diff

import (
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// objectState is what is known of one object before the cluster is asked
// about it: the desired object and the live one. It holds values only.
type objectState struct {
	Target kube.Target
	// Desired is the manifest's object with its settled namespace, or
	// DesiredErr why it could not be decoded.
	Desired    *unstructured.Unstructured
	DesiredErr error
	// Live is the object in the cluster (nil: none), or ReadErr why it
	// could not be read.
	Live    *unstructured.Unstructured
	ReadErr error
	// StatusIsField says status is an ordinary field (no status
	// subresource): the apply sets it, so it is compared as any.
	StatusIsField bool
}

// salt keys the hashes that stand for the object's Secret values: its UID
// when it is live, so that the same values hash alike across runs.
func (s objectState) salt() string {
	if s.Live != nil {
		return string(s.Live.GetUID())
	}
	return s.Target.Ref.String()
}

// answer is what the cluster said of applying one object: one field is set.
type answer struct {
	// Unchanged: the apply is known to change nothing (the apply's own
	// fields or the prediction), and the user may patch the object.
	Unchanged bool
	// Refused is why the user may not patch the object (an access review).
	Refused string
	// Merged is what the server's dry run made; Err why it failed.
	Merged *unstructured.Unstructured
	Err    error
	// Set is the outcome where the dry run could not be made because the
	// object's Namespace or CRD comes with the manifests (createdBySet).
	Set *Object
}

// decider decides on one object: normalisation, ignore rules and the
// controller's policy.
type decider struct {
	n      normalizer
	ignore []IgnoreRule
	policy Policy
}

// normalizer is d's normalizer for s: status compared where it is a field.
func (d decider) normalizer(s objectState) normalizer {
	n := d.n
	n.showStatus = n.showStatus || s.StatusIsField
	return n
}

// decide gives the verdict on one object from what is known of it and what
// the cluster answered (a; nil: not asked yet), with no request. decided is
// false when a is nil and the cluster must be asked: decide again with its
// answer.
func (d decider) decide(s objectState, a *answer) (out Object, decided bool) {
	t := s.Target
	failed := func(msg string) Object { return Object{Ref: t.Ref, Action: Failed, Error: msg, Origin: t.Origin} }
	switch {
	case s.ReadErr != nil:
		return failed("reading the live object: " + objectMessage(s.ReadErr)), true
	case s.DesiredErr != nil:
		return failed(s.DesiredErr.Error()), true
	}
	if d.policy != nil {
		if why := d.policy.Skip(s.Desired, s.Live); why != "" {
			return skipped(t.Ref, t.Origin, why), true
		}
	}
	switch {
	case a == nil:
		return Object{}, false
	case a.Set != nil:
		return *a.Set, true
	case a.Unchanged:
		return Object{Ref: t.Ref, Action: Unchanged, Origin: t.Origin}, true
	case a.Refused != "":
		return failed("forbidden: " + a.Refused), true
	case a.Err != nil:
		return failed(objectMessage(a.Err)), true
	case a.Merged == nil:
		return failed("the dry run returned no object"), true
	}
	n, salt := d.normalizer(s), s.salt()
	if s.Live == nil {
		return created(t.Ref, t.Manifest, n.normalize(a.Merged, salt)), true
	}
	before, after := n.normalize(s.Live, salt), n.normalize(a.Merged, salt)
	dropManaged(d.ignore, s.Live, before, after)
	if reflect.DeepEqual(before, after) {
		return Object{Ref: t.Ref, Action: Unchanged, Origin: t.Origin}, true
	}
	ch := changes(before, after)
	paths := make([]string, len(ch))
	for i, c := range ch {
		paths[i] = c.Path
	}
	return Object{Ref: t.Ref, Action: Changed, ChangedPaths: paths, Changes: ch,
		Before: toYAML(before), After: toYAML(after), Origin: t.Origin}, true
}

// skipped is the outcome for an object the policy leaves alone, and why.
func skipped(ref kube.Ref, origin, why string) Object {
	return Object{Ref: ref, Action: Skipped, Note: why, Origin: origin}
}
