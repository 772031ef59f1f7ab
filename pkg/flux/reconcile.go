package flux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Condition is one of a Flux object's status conditions.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

func (c Condition) String() string {
	s := c.Type + "=" + c.Status
	if c.Reason != "" {
		s += " (" + c.Reason + ")"
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// Status is what a Flux object's status says of its last reconciliation.
type Status struct {
	// Handled is status.lastHandledReconcileAt: the last reconcile request
	// the controller acted on.
	Handled string
	// Current: the controller has seen the object's latest spec
	// (status.observedGeneration is metadata.generation).
	Current    bool
	Conditions []Condition
	// Revision is a Kustomization's status.lastAppliedRevision, or a
	// GitRepository's status.artifact.revision.
	Revision string
	// Attempted is a Kustomization's status.lastAttemptedRevision.
	Attempted string
	Suspended bool
}

// ReadStatus reads o's status.
func ReadStatus(o *unstructured.Unstructured) Status {
	var s Status
	s.Handled, _, _ = unstructured.NestedString(o.Object, "status", "lastHandledReconcileAt")
	og, found, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
	s.Current = found && og >= o.GetGeneration()
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		str := func(k string) string { v, _ := m[k].(string); return v }
		s.Conditions = append(s.Conditions, Condition{Type: str("type"), Status: str("status"), Reason: str("reason"), Message: str("message")})
	}
	if o.GetKind() == "GitRepository" {
		s.Revision, _, _ = unstructured.NestedString(o.Object, "status", "artifact", "revision")
	} else {
		s.Revision, _, _ = unstructured.NestedString(o.Object, "status", "lastAppliedRevision")
		s.Attempted, _, _ = unstructured.NestedString(o.Object, "status", "lastAttemptedRevision")
	}
	s.Suspended, _, _ = unstructured.NestedBool(o.Object, "spec", "suspend")
	return s
}

// Condition is the condition of type t; ok is false when there is none.
func (s Status) Condition(t string) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// Ready says whether the Ready condition is True.
func (s Status) Ready() bool {
	c, ok := s.Condition("Ready")
	return ok && c.Status == "True"
}

// failed says whether the last reconciliation ended in failure: Ready is
// False and the controller is not working on it (or it is Stalled).
func (s Status) failed() bool {
	if c, ok := s.Condition("Stalled"); ok && c.Status == "True" {
		return true
	}
	ready, ok := s.Condition("Ready")
	if !ok || ready.Status != "False" {
		return false
	}
	rec, ok := s.Condition("Reconciling")
	return !ok || rec.Status != "True"
}

// Summary is the Ready condition in words, or what Flux has said so far.
func (s Status) Summary() string {
	if c, ok := s.Condition("Ready"); ok {
		return c.String()
	}
	if len(s.Conditions) == 0 {
		return "no conditions yet (is the controller running?)"
	}
	var parts []string
	for _, c := range s.Conditions {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, "; ")
}

// RevisionSHA is the commit of a Flux revision ("main@sha1:abc…",
// "sha1:abc…"); "" when it names none.
func RevisionSHA(rev string) string {
	_, after, ok := strings.Cut(rev, "sha1:")
	if !ok {
		_, after, ok = strings.Cut(rev, "sha256:")
	}
	if !ok {
		return ""
	}
	return after
}

// SuspendedError is a reconcile asked of a suspended object, which Flux
// would not act on.
type SuspendedError struct{ Kind, Namespace, Name string }

func (e *SuspendedError) Error() string {
	return fmt.Sprintf("%s %s/%s is suspended: resume it first ('flux resume' or set spec.suspend to false)", e.Kind, e.Namespace, e.Name)
}

// Request is a reconcile request made: the value set, and the
// status.lastHandledReconcileAt read before it.
type Request struct {
	At, Before string
}

// handledBy says whether a status shows the request handled: as `flux
// reconcile` waits, lastHandledReconcileAt differs from before the request
// (another trigger, a webhook Receiver on the same push, may have set a
// later value than ours: the run that handled it saw ours too).
func (r Request) handledBy(s Status) bool {
	return s.Handled == r.At || (s.Handled != "" && s.Handled != r.Before)
}

// RequestReconcile asks Flux to reconcile ns/name now, as `flux reconcile`
// does: it refuses a suspended object, and merge-patches
// reconcile.fluxcd.io/requestedAt with the time, which the controller
// copies to status.lastHandledReconcileAt.
func RequestReconcile(ctx context.Context, c Cluster, gvr schema.GroupVersionResource, ns, name, manager string) (Request, error) {
	o, err := c.GetObject(ctx, gvr, ns, name)
	if err != nil {
		return Request{}, err
	}
	kind := kindOf(gvr)
	if o == nil {
		return Request{}, fmt.Errorf("%s %s/%s not found", kind, ns, name)
	}
	st := ReadStatus(o)
	if st.Suspended {
		return Request{}, &SuspendedError{Kind: kind, Namespace: ns, Name: name}
	}
	r := Request{At: time.Now().Format(time.RFC3339Nano), Before: st.Handled}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{RequestedAtAnnotation: r.At}}})
	if err := c.MergePatch(ctx, gvr, ns, name, patch, manager); err != nil {
		return Request{}, fmt.Errorf("asking Flux to reconcile %s %s/%s: %w", kind, ns, name, err)
	}
	return r, nil
}

func kindOf(gvr schema.GroupVersionResource) string {
	switch gvr {
	case GitRepositories:
		return "GitRepository"
	case Kustomizations:
		return "Kustomization"
	}
	return gvr.Resource
}

// FailedError is a reconciliation Flux reports as failed.
type FailedError struct {
	Kind, Namespace, Name string
	Status                Status
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("Flux failed to reconcile %s %s/%s: %s", e.Kind, e.Namespace, e.Name, e.Status.Summary())
}

// NotReconciledError is a wait that ended before Flux had reconciled.
type NotReconciledError struct {
	Kind, Namespace, Name string
	// Handled: the controller acted on the request (it is Ready that did
	// not come).
	Handled bool
	Status  Status
	Err     error
}

func (e *NotReconciledError) Error() string {
	what := "did not act on the reconcile request (is its controller running?)"
	if e.Handled {
		what = "is not Ready"
	}
	return fmt.Sprintf("%s %s/%s %s; Flux says: %s: %v", e.Kind, e.Namespace, e.Name, what, e.Status.Summary(), e.Err)
}

func (e *NotReconciledError) Unwrap() error { return e.Err }

// WaitReconciled waits until the controller handled the request
// (RequestReconcile's) and the object is Ready for its latest spec;
// progress hears each status read. A reconciliation Flux reports as failed
// is a *FailedError; ctx's end a *NotReconciledError saying what Flux said.
func WaitReconciled(ctx context.Context, c Cluster, gvr schema.GroupVersionResource, ns, name string, requested Request, poll time.Duration, progress func(Status)) (*unstructured.Unstructured, error) {
	kind := kindOf(gvr)
	var last Status
	handled := false
	for {
		o, err := c.GetObject(ctx, gvr, ns, name)
		switch {
		case err != nil && ctx.Err() == nil:
			return nil, err
		case err == nil && o == nil:
			return nil, fmt.Errorf("%s %s/%s was deleted while waiting for it", kind, ns, name)
		case err == nil:
			last = ReadStatus(o)
			handled = requested.handledBy(last)
			if progress != nil {
				progress(last)
			}
			// The controllers copy the request to lastHandledReconcileAt
			// at the end of the run that saw it; a failed run keeps
			// Reconciling=True (ProgressingWithRetry) and leaves
			// observedGeneration behind (kustomize-controller's
			// finalizeStatus). So, as 'flux reconcile' does, once handled,
			// Ready says how that run ended.
			if handled && last.Current && last.Ready() {
				return o, nil
			}
			if ready, ok := last.Condition("Ready"); handled && (last.failed() || ok && ready.Status == "False") {
				return o, &FailedError{Kind: kind, Namespace: ns, Name: name, Status: last}
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &NotReconciledError{Kind: kind, Namespace: ns, Name: name, Handled: handled, Status: last, Err: ctx.Err()}
		case <-t.C:
		}
	}
}

// IsNotReconciled says whether err is a wait that ran out.
func IsNotReconciled(err error) bool {
	var nr *NotReconciledError
	return errors.As(err, &nr)
}
