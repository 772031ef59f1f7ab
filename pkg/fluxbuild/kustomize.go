package fluxbuild

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/openapi"

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

	// As fluxkustomize.SecureBuild(root, dirPath, false) builds
	// (kustomize-controller's --no-remote-bases).
	m, err = secureBuild(root, dirPath)
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

// customSchemas remembers, per extracted tree, whether a kustomization in it
// names OpenAPI schemas of its own (the openapi field).
var customSchemas sync.Map // root → bool

// usesCustomSchemas says whether a kustomization file under root has an
// openapi field (read once per tree).
func usesCustomSchemas(root string) bool {
	if v, ok := customSchemas.Load(root); ok {
		return v.(bool)
	}
	found := false
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return nil
		}
		if d.IsDir() || !slices.Contains(konfig.RecognizedKustomizationFileNames(), d.Name()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("openapi")) {
			found = true
		}
		return nil
	})
	customSchemas.Store(root, found)
	return found
}

// secureBuild is fluxkustomize.SecureBuild with remote bases off, and one
// difference that keeps its result: Flux resets kustomize's global OpenAPI
// schema before and after every build, so that a kustomization's openapi
// schemas do not reach the next build; parsing the built-in schema again
// takes ~60 ms a build, most of apps list -A's time over many apps. Here it
// is reset only for a tree whose kustomizations name schemas of their own;
// otherwise the built-in schema, which no build changes, is parsed once.
// Callers hold buildMu, as Flux's Build holds its lock.
func secureBuild(root, dirPath string) (res resmap.ResMap, err error) {
	if usesCustomSchemas(root) {
		return fluxkustomize.SecureBuild(root, dirPath, false)
	}
	fsys, err := securefs.MakeFsOnDiskSecure(root)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered from kustomize build panic: %v", r)
		}
	}()
	_ = openapi.Schema() // the built-in schema, parsed once
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	return k.Run(fsys, dirPath)
}
