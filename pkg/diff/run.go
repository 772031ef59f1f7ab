package diff

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// run is one Run's state, shared by its phases: targets, fetch live (with
// compare and ask for each object), prune.
type run struct {
	c   Cluster
	o   Options
	set *createdBySet
	d   decider

	mu    sync.Mutex // guards res
	res   *Result
	total int // manifests given, for an InterruptedError

	// runCtx ends when an error every object would meet ends the run
	// (end); ending is that error.
	runCtx  context.Context
	cancel  context.CancelFunc
	ending  error
	endOnce sync.Once

	// What the apply would do is known without the server only where no
	// webhook or admission policy may act on it, and the user may patch
	// (startPrediction). admission is ready once ready is done.
	pred      *predictor
	admission *kube.Admission
	access    kube.PatchAccess
	ready     sync.WaitGroup
	// sem is the dry runs' one limit across the groups being read.
	sem chan struct{}
}

func newRun(c Cluster, manifests []kube.Manifest, o Options) *run {
	if o.Manager == "" {
		o.Manager = kube.FieldManager
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	n := normalizer{showStatus: o.ShowStatus, showSecrets: o.ShowSecrets, ignore: o.Ignore, key: o.MaskKey}
	return &run{
		c: c, o: o, set: newCreatedBySet(manifests),
		d:   decider{n: n, ignore: o.Ignore, policy: o.Policy},
		res: &Result{}, total: len(manifests),
		sem: make(chan struct{}, o.Concurrency),
	}
}

// add records one object's outcome; safe from any goroutine.
func (r *run) add(obj Object) {
	r.mu.Lock()
	r.res.Objects = append(r.res.Objects, obj)
	r.mu.Unlock()
}

// end ends the run with err (the first one given) and stops what is in
// flight.
func (r *run) end(err error) {
	r.endOnce.Do(func() { r.ending = err })
	r.cancel()
}

// stopped is the error of a run that ctx ended.
func (r *run) stopped(ctx context.Context) error { return interrupted(ctx, r.res, &r.mu, r.total) }

// targets is the first phase: it maps each manifest onto its resource and
// settles its namespace. What cannot be mapped is decided here (an object
// whose CRD is in the set is checked against it; one the policy leaves
// alone is skipped; any other is an error), as is an object given twice.
// seen holds each target by its object (Ref.Object) with its origin. The
// error is one every manifest would meet (discovery failed), or ctx's.
func (r *run) targets(ctx context.Context, manifests []kube.Manifest) ([]kube.Target, map[kube.Ref]string, error) {
	var targets []kube.Target
	seen := map[kube.Ref]string{}
	for _, m := range manifests {
		if ctx.Err() != nil {
			return nil, nil, r.stopped(ctx)
		}
		t, err := r.c.Map(ctx, m, r.o.DefaultNamespace, r.o.EnforceNamespace)
		var oe *kube.ObjectError
		if err != nil && !errors.As(err, &oe) {
			// Discovery failed: every manifest would fail alike.
			if ctx.Err() != nil {
				return nil, nil, r.stopped(ctx)
			}
			return nil, nil, err
		}
		if err != nil {
			if out, ok := r.skipUnmapped(m); ok {
				r.add(out)
				continue
			}
			if crd := r.set.crds[groupKind(m.Ref)]; crd != nil {
				// Its CRD comes with the same manifests: it would be created,
				// if it is valid by that CRD.
				r.add(r.set.customResource(ctx, r.c, crd, m, r.o, r.d.n))
				continue
			}
			r.add(Object{Ref: m.Ref, Action: Failed, Error: objectMessage(err), Origin: m.Origin})
			continue
		}
		// Keyed without the version: one object written as autoscaling/v1
		// and as v2 is given twice, and the list for pruning reads it in
		// the version the server prefers.
		if prev, dup := seen[t.Ref.Object()]; dup {
			r.add(Object{Ref: t.Ref, Action: Failed, Error: fmt.Sprintf("given twice (%s and %s)", prev, m.Origin), Origin: m.Origin})
			continue
		}
		seen[t.Ref.Object()] = m.Origin
		targets = append(targets, t)
	}
	return targets, seen, nil
}

// skipUnmapped is the outcome for a manifest that could not be mapped (a
// kind the cluster has not, yet; a namespace -n forbids) when the policy
// leaves it alone by what the manifest says (its live object is not read).
func (r *run) skipUnmapped(m kube.Manifest) (Object, bool) {
	if r.o.Policy == nil {
		return Object{}, false
	}
	desired, err := m.Object()
	if err != nil {
		return Object{}, false
	}
	if why := r.o.Policy.Skip(desired, nil); why != "" {
		return skipped(m.Ref, m.Origin, why), true
	}
	return Object{}, false
}

// startPrediction starts reading what predicting an apply needs (the
// schemas of the targets' kinds, the admission configuration) beside the
// live objects: neither is needed before the first of those arrives.
func (r *run) startPrediction(targets []kube.Target) {
	if r.o.ServerOnly {
		return
	}
	if schema := r.c.OpenAPIV3(); schema != nil {
		r.pred = newPredictor(r.runCtx, schema, r.c.HasStatusSubresource, r.o.Schemas)
	}
	for _, t := range targets {
		r.pred.want(t.Mapping.GroupVersionKind)
	}
	r.access = r.c.NewAccess()
	r.ready.Add(1)
	go func() {
		defer r.ready.Done()
		r.admission = r.c.ReadAdmission(r.runCtx)
	}()
	r.pred.prefetch()
}

// fetchLive is the second phase: it reads the targets' live objects and
// hands each to fn as it arrives (fn may run concurrently). The first read
// goes alone: when the cluster refuses it (401, 403), the run ends with that
// one refusal, as kubectl diff's would, not one per object. Its comparison
// goes on beside the other reads.
func (r *run) fetchLive(targets []kube.Target, fn func(t kube.Target, live *unstructured.Unstructured, err error)) {
	if len(targets) == 0 {
		return
	}
	var first sync.WaitGroup
	r.c.LiveEach(r.runCtx, targets[:1], 1, 1, func(t kube.Target, live *unstructured.Unstructured, err error) {
		if err != nil && (apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)) {
			r.end(err)
			return
		}
		first.Go(func() { fn(t, live, err) })
	})
	if r.runCtx.Err() == nil {
		r.c.LiveEach(r.runCtx, targets[1:], 4, r.o.Concurrency, fn)
	}
	first.Wait()
}

// compare decides on one object from its live state (or the error reading
// it), asking the cluster first when that is not enough.
func (r *run) compare(t kube.Target, live *unstructured.Unstructured, err error) {
	if r.runCtx.Err() != nil {
		return // the run is ending: not compared
	}
	if err != nil && endsRun(err) {
		r.end(err)
		return
	}
	// Status is compared as any field where it is not a subresource's
	// (custom resources without one): the apply sets it.
	s := objectState{Target: t, Live: live, ReadErr: err, StatusIsField: !r.c.HasStatusSubresource(t.Mapping.Resource)}
	if err == nil {
		s.Desired, s.DesiredErr = t.Object()
	}
	out, decided := r.d.decide(s, nil)
	if !decided {
		a, ok := r.ask(s)
		if !ok {
			return // the run is ending: not compared
		}
		out, _ = r.d.decide(s, &a)
	}
	r.add(out)
}

// ask asks the cluster what applying s.Desired would do: nothing, where
// the apply's own fields already hold the values or the prediction says so
// and the user may patch (an access review, no dry run); else what the
// server's dry run makes of it. ok is false when the run is ending.
func (r *run) ask(s objectState) (a answer, ok bool) {
	t, desired, cur := s.Target, s.Desired, s.Live
	if cur != nil {
		r.ready.Wait()
		if !r.o.ServerOnly && r.admission.MayMatch("UPDATE", t.Mapping.Resource, t.Namespaced()) == "" &&
			(unchangedByApply(cur, desired, r.o.Manager, s.StatusIsField) || r.pred.unchanged(t.Mapping.Resource, cur, desired, r.o.Manager, r.o.Force)) {
			may, why, err := r.access.CanPatch(r.runCtx, t.Mapping.Resource, t.Ref.Namespace, t.Ref.Name)
			switch {
			case err == nil && may:
				return answer{Unchanged: true}, true
			case err == nil:
				// The apply would be refused, as the dry run would say.
				return answer{Refused: why}, true
			}
			// Not known: the dry run answers.
		}
	}
	select {
	case r.sem <- struct{}{}:
	case <-r.runCtx.Done():
		return answer{}, false
	}
	if r.runCtx.Err() != nil {
		<-r.sem
		return answer{}, false
	}
	merged, err := r.c.Apply(r.runCtx, t, desired, r.o.Manager, r.o.Force, true)
	if err != nil && r.runCtx.Err() == nil && endsRun(err) {
		r.end(err) // before another dry run may start
	}
	<-r.sem
	if err == nil {
		return answer{Merged: merged}, true
	}
	switch {
	case r.runCtx.Err() != nil:
		return answer{}, false
	case cur == nil && apierrors.IsNotFound(err) && r.set.crds[groupKind(t.Ref)] != nil:
		// Its CRD comes with the same manifests, and the cluster's
		// discovery (cached) still knows a kind it no longer has.
		out := r.set.customResource(r.runCtx, r.c, r.set.crds[groupKind(t.Ref)], t.Manifest, r.o, r.d.normalizer(s))
		return answer{Set: &out}, true
	case cur == nil && apierrors.IsNotFound(err) && t.Namespaced() && r.set.namespaces[t.Ref.Namespace]:
		// Its Namespace comes with the same manifests: no dry run can be
		// made there yet; the schema is checked.
		out := r.set.inNewNamespace(t, desired, r.pred, r.d.normalizer(s).normalize(desired, s.salt()))
		return answer{Set: &out}, true
	}
	return answer{Err: err}, true
}
