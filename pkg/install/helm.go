package install

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// HelmFieldManager is the field manager Helm writes as: Helm 3 with
// updates, Helm 4 with server-side applies (its default).
const HelmFieldManager = "helm"

// Helm's marks on the objects of a release, and on its record.
const (
	helmReleaseName      = "meta.helm.sh/release-name"
	helmReleaseNamespace = "meta.helm.sh/release-namespace"
	helmRecordType       = "helm.sh/release.v1"
)

// HelmRelease is the Helm release of the gitlab-agent chart whose objects
// install takes over (the chart's objects and ours have the same names).
type HelmRelease struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ServerSide: Helm applied the objects server-side, as Helm 4 does;
	// else it wrote them with updates, as Helm 3 does.
	ServerSide bool `json:"serverSide"`
	// Record is the Secret in which Helm keeps the release's latest
	// revision (sh.helm.release.v1.NAME.vN); "" when none was found.
	Record string `json:"record,omitempty"`
}

// String says what adopting the release means, for the plan and the
// progress: the objects become ours, and Helm's record of the release
// stays (helm uninstall would still delete them).
func (h HelmRelease) String() string {
	way := "written by Helm 3"
	if h.ServerSide {
		way = "applied server-side by Helm 4"
	}
	s := fmt.Sprintf("adopting the Helm release %s (%s): its objects become %s's", h.Name, way, kube.FieldManager)
	if h.Record != "" {
		s += fmt.Sprintf("; Helm's record %s stays, so 'helm uninstall %s -n %s' would delete the agent ('kubectl delete secret -n %s -l owner=helm,name=%s' forgets the release)",
			h.Record, h.Name, h.Namespace, h.Namespace, h.Name)
	}
	return s
}

// helmRelease finds the Helm release that installed the agent, when Helm
// labelled its Deployment or token Secret as Helm's (app.kubernetes.io/
// managed-by: Helm, which install's apply makes ours); nil when none did.
func (a *action) helmRelease(ctx context.Context, in manifest.Input) (*HelmRelease, error) {
	var m *metav1.ObjectMeta
	d, err := a.env.Cluster.GetDeployment(ctx, in.Namespace, manifest.DeploymentName(in))
	if err != nil {
		return nil, err
	}
	if d != nil && helmManaged(d.ObjectMeta) {
		m = &d.ObjectMeta
	} else {
		s, err := a.env.Cluster.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
		if err != nil {
			return nil, err
		}
		if s == nil || !helmManaged(s.ObjectMeta) {
			return nil, nil
		}
		m = &s.ObjectMeta
	}
	h := &HelmRelease{Name: m.Annotations[helmReleaseName], Namespace: m.Annotations[helmReleaseNamespace]}
	if h.Name == "" { // Helm before 3.2 did not annotate
		h.Name = manifest.InstanceOf(m.Labels)
	}
	if h.Namespace == "" {
		h.Namespace = m.Namespace
	}
	for _, e := range m.ManagedFields {
		if e.Manager == HelmFieldManager && e.Subresource == "" && e.Operation == metav1.ManagedFieldsOperationApply {
			h.ServerSide = true
		}
	}
	h.Record, err = a.helmRecord(ctx, h.Name, h.Namespace)
	return h, err
}

func helmManaged(m metav1.ObjectMeta) bool {
	return m.Labels["app.kubernetes.io/managed-by"] == "Helm"
}

// helmRecord is the name of the Secret that holds the release's latest
// revision ("" none): Helm's default storage, labelled owner=helm and with
// the release's name and revision.
func (a *action) helmRecord(ctx context.Context, name, ns string) (string, error) {
	sel, err := labels.ValidatedSelectorFromSet(labels.Set{"owner": "helm", "name": name})
	if err != nil {
		return "", nil // a name Helm could not have written
	}
	objs, err := a.env.Cluster.SelectedObjects(ctx, sel.String(), []string{ns}, []string{"Secret"})
	if err != nil {
		return "", fmt.Errorf("looking for Helm's record of release %s: %w", name, err)
	}
	type revision struct {
		name string
		n    int
	}
	var revs []revision
	for _, o := range objs {
		if t, _, _ := unstructured.NestedString(o.Object, "type"); t != helmRecordType {
			continue
		}
		n, _ := strconv.Atoi(o.GetLabels()["version"])
		revs = append(revs, revision{o.GetName(), n})
	}
	if len(revs) == 0 {
		return "", nil
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].n > revs[j].n })
	return revs[0].name, nil
}

// takeOverFromHelm makes the fields of the applied objects that Helm's field
// manager shares with ours ours alone (kube.TakeOverFields), so that a
// field a later upgrade drops goes. It changes no object's content: a
// failure is said, and install goes on.
func (a *action) takeOverFromHelm(ctx context.Context, r *rendered) {
	for _, t := range r.targets {
		if err := a.env.Cluster.TakeOver(ctx, t, HelmFieldManager, kube.FieldManager); err != nil {
			a.say(fmt.Sprintf("warning: %s stays co-owned by Helm's field manager (%v): a field a later upgrade drops may stay", t.Ref, err))
		}
	}
}
