package install

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// helmInstalled puts in the cluster what `helm install` of the chart with
// in's values leaves: the chart's objects labelled and annotated as Helm's,
// written by field manager helm (serverSide: applied, as Helm 4 does; else
// updates, as Helm 3's), and Helm's records of revisions 1 and 2.
func helmInstalled(t *testing.T, c *fake.Cluster, in manifest.Input, serverSide bool) {
	t.Helper()
	in.Values.Config.Token = "glagent-from-the-helm-values"
	out, err := manifest.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range out.Objects {
		u := &unstructured.Unstructured{Object: obj}
		l := u.GetLabels()
		l["app.kubernetes.io/managed-by"], l["helm.sh/chart"] = "Helm", "gitlab-agent-2.15.0"
		u.SetLabels(l)
		u.SetAnnotations(map[string]string{"meta.helm.sh/release-name": in.Name, "meta.helm.sh/release-namespace": in.Namespace})
	}
	ms, err := kube.FromObjects(out.Objects, "helm")
	if err != nil {
		t.Fatal(err)
	}
	targets, err := c.MapAll(ms, in.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyAll(context.Background(), targets, HelmFieldManager); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		o := c.Get(tg.Ref)
		if !serverSide { // Helm 3 created them: its fields are an update's
			mf := o.GetManagedFields()
			for i := range mf {
				mf[i].Operation = metav1.ManagedFieldsOperationUpdate
			}
			o.SetManagedFields(mf)
		}
		c.Put(o)
	}
	for _, v := range []string{"1", "2"} {
		c.Put(&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
			"metadata": map[string]any{"name": "sh.helm.release.v1." + in.Name + ".v" + v, "namespace": in.Namespace,
				"labels": map[string]any{"owner": "helm", "name": in.Name, "version": v, "status": "deployed"}},
		}})
	}
}

// TestInstallAdoptsHelmRelease: over an agent installed with the chart by
// Helm 3 or Helm 4, install's dry run names the release it would adopt and
// its record; install takes the objects over, Helm's field manager left
// sharing none of our fields, so that a value the next upgrade no longer
// gives goes; once adopted, there is no release to adopt.
func TestInstallAdoptsHelmRelease(t *testing.T) {
	for _, serverSide := range []bool{false, true} {
		w := newWorld(t)
		o := w.opts("prod")
		o.Input.Values.PodAnnotations = map[string]string{"team": "infra"} // the values Helm was given
		helmInstalled(t, w.cluster, o.Input, serverSide)
		applied := len(w.cluster.Applied())

		o.DryRun = DryRunClient
		res, err := Install(context.Background(), w.env(), InstallOptions{Options: o})
		want := HelmRelease{Name: "prod", Namespace: "gitlab-agent-prod", ServerSide: serverSide, Record: "sh.helm.release.v1.prod.v2"}
		if err != nil || res.Plan == nil || res.Plan.HelmRelease == nil || *res.Plan.HelmRelease != want {
			t.Fatalf("serverSide=%v: dry run: %v, plan %+v", serverSide, err, res.Plan)
		}
		if len(w.cluster.Applied()) != applied || w.cluster.Count(fake.TakeOver) != 0 {
			t.Errorf("the dry run changed the cluster")
		}

		o.DryRun = DryRunNone
		if res, err = Install(context.Background(), w.env(), InstallOptions{Options: o}); err != nil || res.HelmRelease == nil || *res.HelmRelease != want {
			t.Fatalf("serverSide=%v: install: %v, %+v", serverSide, err, res)
		}
		if !strings.Contains(w.report.text(), "adopting the Helm release prod") {
			t.Errorf("the report does not say it adopts the release:\n%s", w.report.text())
		}
		for _, ref := range w.cluster.Objects() {
			obj := w.cluster.Get(ref)
			if obj.GetLabels()["app.kubernetes.io/managed-by"] != manifest.ManagedBy {
				continue // Helm's records
			}
			if _, shared, _ := kube.TakeOverFields(obj.GetManagedFields(), HelmFieldManager, kube.FieldManager); shared {
				t.Errorf("serverSide=%v: %s: Helm's field manager still shares fields with ours", serverSide, ref)
			}
		}

		// The next upgrade without the annotation removes it.
		o = w.opts("prod")
		if _, err := Upgrade(context.Background(), w.env(), o); err != nil {
			t.Fatal(err)
		}
		d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
		if v, ok := d.Spec.Template.Annotations["team"]; ok {
			t.Errorf("serverSide=%v: the annotation Helm was given stays after an upgrade without it: %q", serverSide, v)
		}

		if res, err = Install(context.Background(), w.env(), InstallOptions{Options: o}); err != nil || res.HelmRelease != nil || !res.UpToDate {
			t.Errorf("serverSide=%v: install once adopted: %v, %+v", serverSide, err, res)
		}
	}
}
