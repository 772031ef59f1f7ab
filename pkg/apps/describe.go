package apps

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
)

var events = schema.GroupVersionResource{Version: "v1", Resource: "events"}

// Details is one app as apps get shows it.
type Details struct {
	App *App `json:"app"`
	// URL and Ref are the source's (a GitRepository's url and ref).
	URL string `json:"url,omitempty"`
	Ref string `json:"ref,omitempty"`
	// Path is a Kustomization's spec.path.
	Path       string           `json:"path,omitempty"`
	Attempted  string           `json:"attemptedRevision"`
	Conditions []flux.Condition `json:"conditions"`
	// Inventory counts the objects Flux applied, by kind.
	Inventory []KindCount `json:"inventory"`
	// Drifted names the objects whose live state differs from the
	// source's build; nil when not compared.
	Drifted []string `json:"drifted"`
	Events  []Event  `json:"events"`
}

// KindCount is how many objects of a kind.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// Event is one of the app's Kubernetes events.
type Event struct {
	Time    *time.Time `json:"time"`
	Type    string     `json:"type"`
	Reason  string     `json:"reason"`
	Message string     `json:"message"`
}

// maxEvents is how many of the last events Describe keeps.
const maxEvents = 10

// Describe reads one app with its source, conditions, inventory and last
// events.
func Describe(ctx context.Context, e Env, ns, name string) (*Details, error) {
	a, err := Get(ctx, e, ns, name)
	if err != nil {
		return nil, err
	}
	d := &Details{App: a, Conditions: []flux.Condition{}, Inventory: []KindCount{}, Events: []Event{}}
	st := flux.ReadStatus(a.obj)
	d.Conditions = append(d.Conditions, st.Conditions...)
	d.Attempted = st.Attempted
	if a.Kind == KindKustomization {
		d.Path = "./" + appPath(a)
	}
	if a.source != nil {
		d.URL, _, _ = unstructured.NestedString(a.source.Object, "spec", "url")
		if ref, ok, _ := unstructured.NestedMap(a.source.Object, "spec", "ref"); ok {
			b, _ := json.Marshal(ref)
			d.Ref = string(b)
		}
	}
	counts := map[string]int{}
	for _, ie := range flux.Inventory(a.obj) {
		counts[ie.Kind]++
	}
	for k, n := range counts {
		d.Inventory = append(d.Inventory, KindCount{Kind: k, Count: n})
	}
	sort.Slice(d.Inventory, func(i, j int) bool { return d.Inventory[i].Kind < d.Inventory[j].Kind })
	evs, err := e.Flux.ListObjects(ctx, events, ns)
	if err == nil {
		for _, ev := range evs {
			kind, _, _ := unstructured.NestedString(ev.Object, "involvedObject", "kind")
			n, _, _ := unstructured.NestedString(ev.Object, "involvedObject", "name")
			if kind != a.Kind || n != a.Name {
				continue
			}
			var when *time.Time
			for _, f := range []string{"lastTimestamp", "eventTime", "firstTimestamp"} {
				if s, _, _ := unstructured.NestedString(ev.Object, f); s != "" {
					if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
						when = &t
						break
					}
				}
			}
			typ, _, _ := unstructured.NestedString(ev.Object, "type")
			reason, _, _ := unstructured.NestedString(ev.Object, "reason")
			msg, _, _ := unstructured.NestedString(ev.Object, "message")
			d.Events = append(d.Events, Event{Time: when, Type: typ, Reason: reason, Message: msg})
		}
		sort.SliceStable(d.Events, func(i, j int) bool {
			ti, tj := d.Events[i].Time, d.Events[j].Time
			return ti != nil && (tj == nil || ti.After(*tj))
		})
		if len(d.Events) > maxEvents {
			d.Events = d.Events[:maxEvents]
		}
	}
	return d, nil
}
