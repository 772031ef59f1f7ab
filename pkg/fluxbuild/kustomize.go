package fluxbuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resmap"
)

// kustomize runs Flux's generator on dirPath and builds it with
// fluxcd/pkg/kustomize's SecureBuild, as kustomize-controller's generate
// and build do, after refusing every remote reference (remote.go). The
// generated or amended kustomization file is written for the build only:
// the tree is as before when kustomize returns. generated says the path
// had no kustomization file.
func kustomize(root, dirPath string, ks unstructured.Unstructured) (m resmap.ResMap, generated bool, err error) {
	buildMu.Lock()
	defer buildMu.Unlock()

	manifest, kfile, action, err := fluxkustomize.NewGenerator(root, ks).GenerateManifest(dirPath)
	if err != nil {
		return nil, false, fmt.Errorf("generating the kustomization file: %w", err)
	}
	generated = action == fluxkustomize.CreatedAction
	if err := refuseRemote(root, dirPath, manifest, kfile); err != nil {
		return nil, false, err
	}

	// Written through an os.Root: a tree that is a checkout may hold a
	// kustomization file that is a link out of it.
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	name, err := filepath.Rel(root, kfile)
	if err != nil {
		return nil, false, err
	}
	var original []byte
	if !generated {
		if original, err = r.ReadFile(name); err != nil {
			return nil, false, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if err := r.WriteFile(name, manifest, 0o600); err != nil {
		return nil, false, fmt.Errorf("writing the kustomization file: %w", err)
	}
	defer func() {
		var rerr error
		if generated {
			rerr = r.Remove(name)
		} else {
			rerr = r.WriteFile(name, original, 0o600)
		}
		if rerr != nil && err == nil {
			m, err = nil, fmt.Errorf("restoring %s after the build: %w", name, rerr)
		}
	}()

	// allowRemoteBases false: kustomize-controller's --no-remote-bases.
	m, err = fluxkustomize.SecureBuild(root, dirPath, false)
	if err != nil {
		return nil, false, fmt.Errorf("kustomize build failed: %w", err)
	}
	for _, res := range m.Resources() {
		// kustomize-controller's check, in its words.
		if res.GetName() == "" || res.GetKind() == "" || res.GetApiVersion() == "" {
			return nil, false, errors.New("failed to decode Kubernetes apiVersion, kind and name from: " + res.String())
		}
	}
	return m, generated, nil
}
