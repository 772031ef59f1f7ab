package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// helmChart is what `helm template demo` of the gitlab-agent chart 2.15.0
// makes in namespace gitlab-agent, with a token in the values
// (pkg/manifest's chart cases).
const helmChart = "../../pkg/manifest/testdata/chart/2.15.0/defaults-token/helm.yaml"

// helmInstall does in the cluster what `helm install NAME gitlab/gitlab-agent
// --namespace ns --create-namespace` of that chart does, as Helm major
// version 3 or 4 does it: the namespace created, each object annotated with
// the release (meta.helm.sh/release-name, -namespace) and written by field
// manager helm (Helm 3: created, an Update in managedFields; Helm 4: applied
// server-side), and the release's record, Secret sh.helm.release.v1.NAME.v1
// of type helm.sh/release.v1. It returns the objects' kind/name.
func helmInstall(t *testing.T, major int, name, ns string) []string {
	t.Helper()
	src, err := os.ReadFile(helmChart)
	if err != nil {
		t.Fatal(err)
	}
	// The chart names its cluster-wide objects after the release's
	// namespace, gitlab-agent in the file.
	manifest := strings.NewReplacer("namespace: gitlab-agent\n", "namespace: "+ns+"\n", "name: gitlab-agent:demo", "name: "+ns+":demo").
		Replace(string(src))
	manifest = strings.ReplaceAll(manifest, "demo", name)
	var docs []string
	var names []string
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj == nil {
			continue
		}
		meta := obj["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
		}
		ann["meta.helm.sh/release-name"], ann["meta.helm.sh/release-namespace"] = name, ns
		meta["annotations"] = ann
		out, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(out))
		names = append(names, obj["kind"].(string)+"/"+meta["name"].(string))
	}
	sort.Strings(names)
	objects := strings.Join(docs, "---\n")
	create := []string{"create", "--field-manager=helm", "-n", ns, "-f", "-"} // Helm 3
	if major == 4 {
		create = []string{"apply", "--server-side", "--field-manager=helm", "-n", ns, "-f", "-"}
	}
	nsLabel := "name=" + ns // Helm's --create-namespace labels it so
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"create", "namespace", ns, "--field-manager=helm"}},
		{"", []string{"label", "namespace", ns, nsLabel, "--field-manager=helm"}},
		{objects, create},
		{helmRecord(t, name, ns, manifest), []string{"create", "--field-manager=helm", "-f", "-"}},
	} {
		if r := runCmd(t, c.stdin, kubectl, c.args...); r.code != 0 {
			t.Fatalf("kubectl %v: %s", c.args, r.stderr)
		}
	}
	return names
}

// helmRecord is the Secret in which Helm keeps revision 1 of the release,
// deployed: the release as gzipped JSON, base64-encoded, in data.release.
func helmRecord(t *testing.T, name, ns, manifest string) string {
	t.Helper()
	release, err := json.Marshal(map[string]any{
		"name": name, "namespace": ns, "version": 1, "manifest": manifest,
		"info":  map[string]any{"status": "deployed", "description": "Install complete"},
		"chart": map[string]any{"metadata": map[string]any{"name": "gitlab-agent", "version": "2.15.0", "appVersion": "v18.0.0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	secret := map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
		"metadata": map[string]any{
			"name": "sh.helm.release.v1." + name + ".v1", "namespace": ns,
			"labels": map[string]any{"name": name, "owner": "helm", "status": "deployed", "version": "1"},
		},
		"data": map[string]any{"release": base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(gz.Bytes())))},
	}
	out, err := yaml.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestInstallAdoptsHelmRelease: install NAME over the agent installed with
// the chart by Helm 3 or by Helm 4 (which applies server-side) says, in its
// dry run, that it adopts the Helm release, and takes its objects over:
// one agentk Deployment, connected, no second set of objects, each object
// labelled ours and no field of it shared with Helm's field manager.
func TestInstallAdoptsHelmRelease(t *testing.T) {
	needCluster(t)
	for _, major := range []int{3, 4} {
		v := strconv.Itoa(major)
		t.Run("Helm "+v, func(t *testing.T) {
			g := newGitLab(t)
			simulateAgentk(t, g)
			name := "helm" + v
			ns := "gitlab-agent-" + name
			p := []string{"--project", "infra/agents"}
			helmObjects := helmInstall(t, major, name, ns)
			waitAvailable(t, ns, name+"-gitlab-agent-v2", 2)

			way := map[int]string{3: "written by Helm 3", 4: "applied server-side by Helm 4"}[major]
			r := g.run(t, nil, append([]string{"install", name, "--dry-run"}, p...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "\nCluster: adopting the Helm release "+name+" ("+way+")") {
				t.Fatalf("install --dry-run over a Helm %d install: %+v", major, r)
			}
			r = g.run(t, nil, append([]string{"install", name, "--dry-run", "-o", "json"}, p...)...)
			var doc struct {
				Plan struct {
					HelmRelease *struct {
						Name       string `json:"name"`
						Namespace  string `json:"namespace"`
						ServerSide bool   `json:"serverSide"`
						Record     string `json:"record"`
					} `json:"helmRelease"`
				} `json:"plan"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); r.code != 0 || err != nil {
				t.Fatalf("install --dry-run -o json: %v %+v", err, r)
			}
			if h := doc.Plan.HelmRelease; h == nil || h.Name != name || h.Namespace != ns || h.ServerSide != (major == 4) || h.Record != "sh.helm.release.v1."+name+".v1" {
				t.Fatalf("the JSON plan's helmRelease: %+v", h)
			}

			r = g.run(t, nil, append([]string{"install", name}, p...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "and connected") || !strings.Contains(r.stderr, "adopting the Helm release "+name) {
				t.Fatalf("install over a Helm %d install: %+v", major, r)
			}
			// One agentk Deployment, in the release's namespace.
			deps := runCmd(t, "", kubectl, "get", "deployments", "-A", "-l", "app.kubernetes.io/name=gitlab-agent,app.kubernetes.io/instance="+name, "-o", "name")
			if got := strings.Fields(deps.stdout); len(got) != 1 || got[0] != "deployment.apps/"+name+"-gitlab-agent-v2" {
				t.Errorf("agentk Deployments after adoption: %v", got)
			}
			// No second set: the objects labelled with the release are what
			// render makes, each ours, Helm's among them.
			rendered := runCmd(t, "glagent-any\n", kubectl, "gitlab-agent", "render", name, "-n", ns, "--token-file", "-", "--kas-address", "wss://kas.example.com", "-o", "json")
			var list struct {
				Items []liveObject `json:"items"`
			}
			if err := json.Unmarshal([]byte(rendered.stdout), &list); rendered.code != 0 || err != nil {
				t.Fatalf("render: %v %s", err, rendered.stderr)
			}
			var want []string
			for _, o := range list.Items {
				want = append(want, o.Kind+"/"+o.Metadata.Name)
			}
			sort.Strings(want)
			for _, o := range helmObjects {
				if !slices.Contains(want, o) {
					t.Errorf("Helm's %s is not one of ours: it would be orphaned", o)
				}
			}
			live := liveObjects(t, "app.kubernetes.io/instance="+name)
			var got []string
			for _, o := range live {
				got = append(got, o.Kind+"/"+o.Metadata.Name)
				if by := o.Metadata.Labels["app.kubernetes.io/managed-by"]; by != "kubectl-gitlab-agent" {
					t.Errorf("%s/%s is managed by %q", o.Kind, o.Metadata.Name, by)
				}
				if shared := o.sharedWith("helm"); len(shared) > 0 {
					t.Errorf("%s/%s: Helm's field manager still shares %v", o.Kind, o.Metadata.Name, shared)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("objects of release %s after adoption:\n%v\nwant\n%v", name, got, want)
			}
			g.activeTokensHeld(t, name)

			// Adopted: the next run has nothing to adopt, and nothing to do.
			r = g.run(t, nil, append([]string{"install", name, "--dry-run"}, p...)...)
			if r.code != 0 || strings.Contains(r.stdout, "adopting") {
				t.Errorf("a dry run after adoption: %+v", r)
			}
			if r = g.run(t, nil, append([]string{"install", name}, p...)...); r.code != 0 || !strings.Contains(r.stdout, "up to date") {
				t.Errorf("a re-run after adoption: %+v", r)
			}
		})
	}
}

// liveObject is what the adoption test reads of an object: its kind, name,
// labels and field managers.
type liveObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name          string            `json:"name"`
		Labels        map[string]string `json:"labels"`
		ManagedFields []struct {
			Manager     string         `json:"manager"`
			Operation   string         `json:"operation"`
			Subresource string         `json:"subresource"`
			FieldsV1    map[string]any `json:"fieldsV1"`
		} `json:"managedFields"`
	} `json:"metadata"`
}

// liveObjects lists the objects of the kinds the chart makes that selector
// matches, in every namespace.
func liveObjects(t *testing.T, selector string) []liveObject {
	t.Helper()
	r := runCmd(t, "", kubectl, "get", "namespaces,deployments,secrets,services,serviceaccounts,configmaps,roles,rolebindings,clusterroles,clusterrolebindings",
		"-A", "-l", selector, "-o", "json", "--show-managed-fields")
	var list struct {
		Items []liveObject `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil {
		t.Fatalf("kubectl get: %v %s", err, r.stderr)
	}
	return list.Items
}

// sharedWith lists the fields that manager owns together with
// kubectl-gitlab-agent's apply.
func (o liveObject) sharedWith(manager string) []string {
	ours, theirs := map[string]bool{}, map[string]bool{}
	for _, e := range o.Metadata.ManagedFields {
		switch {
		case e.Subresource != "":
		case e.Manager == "kubectl-gitlab-agent" && e.Operation == "Apply":
			fieldLeaves(e.FieldsV1, "", ours)
		case e.Manager == manager:
			fieldLeaves(e.FieldsV1, "", theirs)
		}
	}
	var shared []string
	for p := range theirs {
		if ours[p] {
			shared = append(shared, p)
		}
	}
	sort.Strings(shared)
	return shared
}

// fieldLeaves adds the paths of a managedFields set's fields to into.
func fieldLeaves(set map[string]any, prefix string, into map[string]bool) {
	for k, v := range set {
		m, _ := v.(map[string]any)
		if len(m) == 0 {
			into[prefix+k] = true
			continue
		}
		fieldLeaves(m, prefix+k+"/", into)
	}
}
