package fluxbuild

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const (
	configMapA = `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  k: v
`
	serviceB = `apiVersion: v1
kind: Service
metadata:
  name: b
spec:
  ports:
  - port: 80
`
	deployWeb = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    team: one
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.0
        envFrom:
        - configMapRef:
            name: a
`
)

// The objects each spec feature builds to, as kustomize-controller v1.9.6
// builds them (the owner labels and creationTimestamp: null that every
// object gets are added to each want by owned).
//
// One difference from the controller is known and harmless: Flux's
// normalisation turns objects into their Go types and back, and the
// k8s.io/api v0.37 types here leave out empty values that v0.36's (the
// controller's) write out, such as a Deployment's status: {} and its pod
// template's creationTimestamp: null. The API server drops both on apply.
func TestBuild(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		spec      string
		vars      *fakeVars
		want      string
		generated bool
		secrets   []string
	}{{
		name: "no kustomization.yaml: Flux generates one of every manifest, and of subdirectories with one",
		files: map[string]string{
			"apps/a.yaml":                   configMapA,
			"apps/b.yml":                    serviceB,
			"apps/README.md":                "# not a manifest",
			"apps/sub/kustomization.yaml":   "resources: [c.yaml]\n",
			"apps/sub/c.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
			"apps/sub/unlisted.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unlisted}\n",
			"apps/plain/d.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n",
			"elsewhere/not-built.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
			"apps/plain/.hidden/ignored.md": "x",
		},
		spec:      "path: ./apps",
		generated: true,
		// The Service gets its port's protocol from Flux's normalisation.
		want: configMapA + `---
apiVersion: v1
kind: Service
metadata:
  name: b
spec:
  ports:
  - port: 80
    protocol: TCP
    targetPort: 0
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: d}
`,
	}, {
		name: "a kustomization.yaml is used as it is",
		files: map[string]string{
			"apps/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\ncommonLabels: {tier: x}\n",
			"apps/a.yaml":             configMapA,
			"apps/b.yaml":             serviceB,
		},
		spec: "path: apps",
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  labels: {tier: x}
data:
  k: v
`,
	}, {
		name:  "no path: the repository's root",
		files: map[string]string{"a.yaml": configMapA},
		spec:  "prune: true",
		want:  configMapA, generated: true,
	}, {
		name:  "targetNamespace",
		files: map[string]string{"apps/a.yaml": configMapA, "apps/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"},
		spec:  "path: apps\ntargetNamespace: team",
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: team
data:
  k: v
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
spec: {}
`, generated: true,
	}, {
		name:  "namePrefix and nameSuffix, references included",
		files: map[string]string{"apps/a.yaml": configMapA, "apps/web.yaml": deployWeb},
		spec:  "path: apps\nnamePrefix: pre-\nnameSuffix: -suf",
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: pre-a-suf
data:
  k: v
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pre-web-suf
  labels:
    team: one
spec:
  selector:
    matchLabels: {app: web}
  strategy: {}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.0
        envFrom:
        - configMapRef:
            name: pre-a-suf
        resources: {}
`, generated: true,
	}, {
		name:  "patches: strategic merge and JSON 6902, with targets",
		files: map[string]string{"apps/a.yaml": configMapA, "apps/b.yaml": serviceB},
		spec: `path: apps
patches:
- patch: |
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: a
    data:
      added: "yes"
  target:
    kind: ConfigMap
- patch: |
    - op: replace
      path: /spec/ports/0/port
      value: 8080
  target:
    kind: Service
    name: b
`,
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  k: v
  added: "yes"
---
apiVersion: v1
kind: Service
metadata:
  name: b
spec:
  ports:
  - port: 8080
    protocol: TCP
    targetPort: 0
`, generated: true,
	}, {
		name:  "images",
		files: map[string]string{"apps/web.yaml": deployWeb},
		spec:  "path: apps\nimages:\n- name: nginx\n  newName: registry.example/nginx\n  newTag: \"2.0\"\n",
		want: strings.Replace(strings.Replace(deployWeb, "image: nginx:1.0", "image: registry.example/nginx:2.0\n        resources: {}", 1),
			"  template:\n    metadata:\n", "  strategy: {}\n  template:\n    metadata:\n", 1),
		generated: true,
	}, {
		name:  "commonMetadata, applied after the build, over the manifests' own labels",
		files: map[string]string{"apps/web.yaml": deployWeb},
		spec:  "path: apps\ncommonMetadata:\n  labels: {team: two, env: prod}\n  annotations: {owner: ops}\n",
		want: strings.Replace(strings.Replace(strings.Replace(deployWeb, "    team: one\n", "    team: two\n    env: prod\n  annotations: {owner: ops}\n", 1),
			"  template:\n    metadata:\n", "  strategy: {}\n  template:\n    metadata:\n", 1),
			"configMapRef:\n            name: a\n", "configMapRef:\n            name: a\n        resources: {}\n", 1),
		generated: true,
	}, {
		name: "components, relative to the path",
		files: map[string]string{
			"apps/kustomization.yaml":             "resources: [a.yaml]\n",
			"apps/a.yaml":                         configMapA,
			"components/extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [e.yaml]\n",
			"components/extra/e.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: e}\n",
		},
		spec: "path: apps\ncomponents: [../components/extra]",
		want: configMapA + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: e}\n",
	}, {
		name: "postBuild.substitute, with a default, and an object that opts out",
		files: map[string]string{
			"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {app: \"${APP}\", size: \"${SIZE:=small}\"}\n",
			"apps/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}\ndata: {app: \"${APP}\"}\n",
		},
		spec: "path: apps\npostBuild:\n  substitute: {APP: shop}\n",
		want: `apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data: {app: shop, size: small}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}
data: {app: "${APP}"}
`, generated: true,
	}, {
		name:  "postBuild.substituteFrom: ConfigMap, Secret, the inline map last; the Secret's values reported",
		files: map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {region: \"${REGION}\", pw: \"${PASSWORD}\", app: \"${APP}\"}\n"},
		spec: `path: apps
postBuild:
  substitute: {APP: inline}
  substituteFrom:
  - {kind: ConfigMap, name: vars}
  - {kind: Secret, name: creds}
`,
		vars: &fakeVars{
			configMaps: map[string]map[string]string{"flux-system/vars": {"REGION": "eu", "APP": "from-configmap"}},
			secrets:    map[string]map[string][]byte{"flux-system/creds": {"PASSWORD": []byte("s3cr3t-value\n"), "EMPTY": nil}},
		},
		want:      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {region: eu, pw: s3cr3t-value, app: inline}\n",
		generated: true,
		secrets:   []string{"s3cr3t-value"},
	}, {
		name:  "substituteFrom: optional ones that do not exist are skipped",
		files: map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: \"${X:=dflt}\", z: \"${Z}\"}\n"},
		spec: `path: apps
postBuild:
  substitute: {Z: one}
  substituteFrom:
  - {kind: ConfigMap, name: missing, optional: true}
  - {kind: Secret, name: missing-too, optional: true}
`,
		vars:      &fakeVars{},
		want:      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: dflt, z: one}\n",
		generated: true,
	}, {
		name:      "substituteStrategy Always: defaults apply with no variable at all",
		files:     map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: \"${X:=dflt}\"}\n"},
		spec:      "path: apps\npostBuild:\n  substituteStrategy: Always\n",
		want:      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: dflt}\n",
		generated: true,
	}, {
		name:      "without Always and no variable, nothing is substituted",
		files:     map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: \"${X:=dflt}\"}\n"},
		spec:      "path: apps\npostBuild: {}\n",
		want:      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: \"${X:=dflt}\"}\n",
		generated: true,
	}, {
		name:      "a Secret's stringData becomes data, as Flux's normalisation does",
		files:     map[string]string{"apps/s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n"},
		spec:      "path: apps",
		want:      "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: dg==}\n",
		generated: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.files)
			before := snapshot(t, dir)
			ks := kustomization(t, tc.spec)
			ksBefore := ks.DeepCopy()
			var vars VarSource
			if tc.vars != nil {
				vars = tc.vars
			}
			res, err := Build(context.Background(), dir, ks, vars)
			if err != nil {
				t.Fatal(err)
			}
			got, want := asYAML(t, unstructuredMaps(res.Objects)), asYAML(t, owned(objects(t, tc.want)))
			if got != want {
				t.Errorf("built:\n%s\nwant:\n%s", got, want)
			}
			if res.Generated != tc.generated {
				t.Errorf("generated %v, want %v", res.Generated, tc.generated)
			}
			if !reflect.DeepEqual(res.SecretValues, tc.secrets) {
				t.Errorf("secret values %q, want %q", res.SecretValues, tc.secrets)
			}
			if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
				t.Errorf("the tree changed:\n%v\nafter:\n%v", before, after)
			}
			if !reflect.DeepEqual(ks, ksBefore) {
				t.Errorf("the Kustomization changed")
			}
		})
	}
}

// Every object carries kustomize-controller's owner labels, whatever it had.
func TestBuildOwnerLabels(t *testing.T) {
	dir := tree(t, map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {kustomize.toolkit.fluxcd.io/name: forged}\n"})
	ks := kustomization(t, "prune: true")
	ks.SetName("web")
	ks.SetNamespace("team")
	res, err := Build(context.Background(), dir, ks, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := res.Objects[0].GetLabels(); len(l) != 2 || l["kustomize.toolkit.fluxcd.io/name"] != "web" || l["kustomize.toolkit.fluxcd.io/namespace"] != "team" {
		t.Errorf("labels %v", l)
	}
}

// substituteFrom objects are read once per build however many objects are
// substituted, and not at all when no object is.
func TestBuildReadsVariablesOnceAndOnlyWhenNeeded(t *testing.T) {
	cm := func(name string, disabled bool) string {
		s := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
		if disabled {
			s += "  labels: {kustomize.toolkit.fluxcd.io/substitute: disabled}\n"
		}
		return s + "data: {x: \"${X}\"}\n"
	}
	spec := "path: apps\npostBuild:\n  substituteFrom:\n  - {kind: Secret, name: creds}\n"
	vars := &fakeVars{secrets: map[string]map[string][]byte{"flux-system/creds": {"X": []byte("secret-x")}}}
	dir := tree(t, map[string]string{"apps/a.yaml": cm("a", false), "apps/b.yaml": cm("b", false), "apps/c.yaml": cm("c", false)})
	if _, err := Build(context.Background(), dir, kustomization(t, spec), vars); err != nil {
		t.Fatal(err)
	}
	if n := vars.reads["Secret/flux-system/creds"]; n != 1 || len(vars.reads) != 1 {
		t.Errorf("reads %v, want the Secret once", vars.reads)
	}

	vars = &fakeVars{secrets: vars.secrets}
	dir = tree(t, map[string]string{"apps/a.yaml": cm("a", true)})
	res, err := Build(context.Background(), dir, kustomization(t, spec), vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(vars.reads) != 0 || len(res.SecretValues) != 0 {
		t.Errorf("reads %v and secrets %q with nothing to substitute", vars.reads, res.SecretValues)
	}
}

func TestBuildRefuses(t *testing.T) {
	files := map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: \"${X}\"}\n", "top.yaml": configMapA}
	cases := []struct {
		name string
		spec string
		vars VarSource
		want string
	}{
		{"spec.path with ..", "path: ../etc", nil, `spec.path "../etc" leaves the repository`},
		{"spec.path with .. inside", "path: apps/../../x", nil, "leaves the repository"},
		{"a path that is not there", "path: ./nope", nil, `kustomization path not found: "./nope"`},
		{"a path that is a file", "path: top.yaml", nil, "kustomization path not found"},
		{"a missing substituteFrom that is not optional", "path: apps\npostBuild:\n  substituteFrom: [{kind: Secret, name: creds}]\n", &fakeVars{},
			`post build failed for 'ConfigMap.v1.[noGrp]/a': substitute from 'Secret/creds' error: secrets "creds" not found`},
		{"the cluster failing", "path: apps\npostBuild:\n  substituteFrom: [{kind: ConfigMap, name: vars, optional: true}]\n", &fakeVars{err: errors.New("connection refused")},
			"substitute from 'ConfigMap/vars' error: connection refused"},
		{"substituteFrom with no cluster given", "path: apps\npostBuild:\n  substituteFrom: [{kind: ConfigMap, name: vars}]\n", nil,
			"postBuild.substituteFrom needs the cluster"},
		{"a component that is remote", "path: apps\ncomponents: [https://example.com/c]", nil, "component path 'https://example.com/c' must be local and relative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), tree(t, files), kustomization(t, tc.spec), tc.vars)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "Kustomization flux-system/apps: ") {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	ks := kustomization(t, "")
	ks.SetKind("HelmRelease")
	if _, err := Build(context.Background(), tree(t, files), ks, nil); err == nil || !strings.Contains(err.Error(), "not a Flux Kustomization") {
		t.Errorf("a HelmRelease: %v", err)
	}
}

// A Secret's value never shows in an error: kustomize-controller masks
// every non-empty one the same way, the longest first.
func TestMask(t *testing.T) {
	got := mask("apply failed: label value \"hunter2-long\" and hunter2 and x", map[string]bool{"hunter2": true, "hunter2-long": true})
	if got != `apply failed: label value "*****" and ***** and x` {
		t.Errorf("got %q", got)
	}
}

// Two Kustomizations of one repository build at once from one tree.
func TestBuildConcurrently(t *testing.T) {
	dir := tree(t, map[string]string{"apps/a.yaml": configMapA, "apps/kustomization.yaml": "resources: [a.yaml]\n", "other/b.yaml": serviceB})
	before := snapshot(t, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			spec := "path: apps\nnamePrefix: p-\n"
			if i%2 == 1 {
				spec = "path: other\n"
			}
			res, err := Build(context.Background(), dir, kustomization(t, spec), nil)
			if err == nil && len(res.Objects) != 1 {
				err = errors.New("wrong objects")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("the tree changed:\n%v\nafter:\n%v", before, after)
	}
}

// What kustomize quotes of the repository (file names, content) reaches a
// terminal inert.
func TestBuildErrorsAreInert(t *testing.T) {
	dir := tree(t, map[string]string{"apps/\x1b]0;pwned\x07.yaml": "kind: [\x1b[2J\n"})
	_, err := Build(context.Background(), dir, kustomization(t, "path: apps"), nil)
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07\n") || !strings.Contains(err.Error(), `\x1b]0;pwned\x07.yaml`) {
		t.Errorf("got %q", err)
	}
}
