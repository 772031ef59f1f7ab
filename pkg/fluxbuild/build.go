package fluxbuild

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// The Kustomization's API group, and the owner labels kustomize-controller
// sets on every object it applies (fluxcd/pkg ssa ResourceManager.
// SetOwnerLabels with the owner group kustomize.toolkit.fluxcd.io).
const (
	Group          = "kustomize.toolkit.fluxcd.io"
	NameLabel      = Group + "/name"
	NamespaceLabel = Group + "/namespace"
)

// VarSource reads the ConfigMaps and Secrets that a Kustomization's
// spec.postBuild.substituteFrom names, in its namespace. The caller
// implements it with the cluster; Build reads each at most once, and only
// when an object is substituted.
type VarSource interface {
	// ConfigMap returns the ConfigMap's data; found is false when it does
	// not exist.
	ConfigMap(ctx context.Context, namespace, name string) (data map[string]string, found bool, err error)
	// Secret returns the Secret's data; found is false when it does not
	// exist.
	Secret(ctx context.Context, namespace, name string) (data map[string][]byte, found bool, err error)
}

// Result is what a Kustomization builds to.
type Result struct {
	// Objects are the objects as kustomize-controller hands them to its
	// server-side apply: built, substituted, labelled with the owner
	// labels, normalised (fluxcd/pkg ssa/normalize) and given
	// spec.commonMetadata, in kustomize's order.
	Objects []*unstructured.Unstructured
	// SecretValues are the values of the variables read from Secrets
	// (postBuild.substituteFrom), sorted, without duplicates or empty
	// ones: never print them, mask them wherever they appear.
	SecretValues []string
	// Generated says that the path had no kustomization file and Flux's
	// generator made one of every manifest in it.
	Generated bool
}

// buildMu serialises the use of a tree: Build writes the generated
// kustomization file into it and takes it away again, and kustomize builds
// one at a time anyway (fluxcd/pkg/kustomize holds a lock around krusty).
var buildMu sync.Mutex

// Build builds the Flux Kustomization ks (kustomize.toolkit.fluxcd.io/v1,
// as read from the cluster) from the repository extracted at dir, as
// kustomize-controller v1.9.6 does in its reconcile: Flux's generator makes
// or amends the kustomization file of spec.path (targetNamespace,
// namePrefix, nameSuffix, patches, images, components), fluxcd/pkg/kustomize
// builds it on a file system that cannot leave dir, postBuild substitutes
// each object (with vars for substituteFrom; nil when the Kustomization
// has none), and the owner labels, Flux's normalisation and commonMetadata
// follow.
//
// Unlike kustomize-controller, Build never fetches anything: a
// kustomization that names a remote base or resource is an error naming
// it, as with --no-remote-bases. SOPS decryption is not done: with
// spec.decryption, encrypted objects come back as they are in git. Build
// leaves dir as it found it and may be called again, also concurrently,
// for other Kustomizations of the same repository.
func Build(ctx context.Context, dir string, ks *unstructured.Unstructured, vars VarSource) (*Result, error) {
	res, err := build(ctx, dir, ks, vars)
	if err != nil {
		// kustomize quotes file names and content of the repository:
		// remote text, made inert before a terminal sees it.
		return nil, &inertError{msg: safetext.Line(err.Error()), err: err}
	}
	return res, nil
}

// inertError is an error whose text is safe to print, with its cause kept
// for errors.As (a *RemoteError, a VarSource's error).
type inertError struct {
	msg string
	err error
}

func (e *inertError) Error() string { return e.msg }
func (e *inertError) Unwrap() error { return e.err }

func build(ctx context.Context, dir string, ks *unstructured.Unstructured, vars VarSource) (*Result, error) {
	if ks == nil {
		return nil, errors.New("no Kustomization to build")
	}
	if gv := ks.GetAPIVersion(); !strings.HasPrefix(gv, Group+"/") || ks.GetKind() != "Kustomization" {
		return nil, fmt.Errorf("%s %s is not a Flux Kustomization (%s/v1)", safetext.Line(gv), safetext.Line(ks.GetKind()), Group)
	}
	name, namespace := ks.GetName(), ks.GetNamespace()
	what := fmt.Sprintf("Kustomization %s/%s", safetext.Line(namespace), safetext.Line(name))
	if name == "" || namespace == "" {
		return nil, fmt.Errorf("%s: the Kustomization needs a name and a namespace", what)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	specPath, _, err := unstructured.NestedString(ks.Object, "spec", "path")
	if err != nil {
		return nil, fmt.Errorf("%s: spec.path: %w", what, err)
	}
	rel, err := cleanRel(specPath)
	if err != nil {
		return nil, fmt.Errorf("%s: spec.path %q %w", what, safetext.Line(specPath), err)
	}
	dirPath := filepath.Join(root, filepath.FromSlash(rel))
	if fi, err := os.Stat(dirPath); err != nil || !fi.IsDir() {
		// kustomize-controller's words for the same check.
		return nil, fmt.Errorf("%s: kustomization path not found: %q is not a directory in the repository", what, safetext.Line(specPath))
	}

	// A copy: Flux's generator and substitution read the object, and
	// the caller's must not change under them.
	k := *ks.DeepCopy()
	m, generated, err := kustomize(root, dirPath, k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	// postBuild, as kustomize-controller's build: each object in turn,
	// unless it opts out with kustomize.toolkit.fluxcd.io/substitute:
	// disabled. The Secret-sourced values are collected for masking.
	secretVals := map[string]bool{}
	postBuild, hasPostBuild, _ := unstructured.NestedFieldNoCopy(k.Object, "spec", "postBuild")
	if hasPostBuild && postBuild != nil {
		strategy, _, _ := unstructured.NestedString(k.Object, "spec", "postBuild", "substituteStrategy")
		reader := &varClient{src: vars, cache: map[varKey]varEntry{}}
		bctx := fluxkustomize.ContextWithSecretVarsCollector(ctx, func(v map[string]string) {
			for _, s := range v {
				if s != "" {
					secretVals[s] = true
				}
			}
		})
		for _, res := range m.Resources() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out, err := fluxkustomize.SubstituteVariables(bctx, reader, k, res,
				fluxkustomize.SubstituteWithStrict(false), // kustomize-controller's default (StrictPostBuildSubstitutions off)
				fluxkustomize.SubstituteWithAlways(strategy == "Always"))
			if err != nil {
				return nil, fmt.Errorf("%s: post build failed for '%s/%s': %s", what, res.GetGvk(), res.GetName(), mask(err.Error(), secretVals))
			}
			if out != nil {
				if _, err := m.Replace(res); err != nil {
					return nil, fmt.Errorf("%s: %s", what, mask(err.Error(), secretVals))
				}
			}
		}
	}

	yml, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("%s: kustomize build failed: %s", what, mask(err.Error(), secretVals))
	}
	objects, err := ssautil.ReadObjects(bytes.NewReader(yml))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", what, mask(err.Error(), secretVals))
	}
	// kustomize-controller: SetOwnerLabels, then in apply normalize and
	// SetCommonMetadata.
	for _, o := range objects {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[NameLabel] = name
		labels[NamespaceLabel] = namespace
		o.SetLabels(labels)
	}
	if err := normalize.UnstructuredList(objects); err != nil {
		return nil, fmt.Errorf("%s: %s", what, mask(err.Error(), secretVals))
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(k.Object, "spec", "commonMetadata"); ok {
		labels, _, err := unstructured.NestedStringMap(k.Object, "spec", "commonMetadata", "labels")
		if err != nil {
			return nil, fmt.Errorf("%s: spec.commonMetadata.labels: %w", what, err)
		}
		annotations, _, err := unstructured.NestedStringMap(k.Object, "spec", "commonMetadata", "annotations")
		if err != nil {
			return nil, fmt.Errorf("%s: spec.commonMetadata.annotations: %w", what, err)
		}
		ssautil.SetCommonMetadata(objects, labels, annotations)
	}

	res := &Result{Objects: objects, Generated: generated}
	for v := range secretVals {
		res.SecretValues = append(res.SecretValues, v)
	}
	slices.Sort(res.SecretValues)
	return res, nil
}

// mask hides the Secret-sourced values in an error's text, as
// kustomize-controller's maskSecretValues does (any non-empty value).
func mask(msg string, secrets map[string]bool) string {
	// The longest first: a value inside another is masked with it.
	vals := slices.Collect(maps.Keys(secrets))
	slices.SortFunc(vals, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	for _, s := range vals {
		msg = strings.ReplaceAll(msg, s, "*****")
	}
	return msg
}
