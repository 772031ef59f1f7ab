package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// FluxCLIVersion is the flux CLI that tools/flux-cli pins.
const FluxCLIVersion = "v2.9.5"

// FluxCLI is the flux command's name inside its cache directory.
const FluxCLI = "flux"

// fluxCLIManifests stands in for flux2's cmd/flux/manifests.embed.go. That
// file embeds cmd/flux/manifests/*.yaml, which flux2's Makefile generates with
// kustomize from the controllers' release assets on GitHub: the module zip on
// the proxy lacks them, so `go build` of cmd/flux from the proxy fails
// ("pattern manifests/*.yaml: no matching files found"). Only `flux install`
// and `flux bootstrap` read them, and both take --manifests=DIR instead.
const fluxCLIManifests = `package main

import "errors"

// writeEmbeddedManifests: this flux was built from the Go module proxy
// without flux2's generated manifests (kubectl-gitlab-agent test/cluster).
func writeEmbeddedManifests(dir string) error {
	return errors.New("this flux has no embedded manifests (built by kubectl-gitlab-agent's tests from the Go module proxy): pass --manifests")
}
`

// EnsureFluxCLI returns the path of the flux CLI, building it from the Go
// module proxy first if this version has not been built on this machine. The
// build uses flux2's own go.mod and go.sum, as its release does; its flux
// install and flux bootstrap need --manifests (see fluxCLIManifests).
func EnsureFluxCLI(ctx context.Context, log io.Writer) (string, error) {
	sum, err := modulesHash(fluxBuildRecipe+"\n"+fluxCLIManifests, "flux-cli")
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("flux-cli-%s-%s", FluxCLIVersion, sum)
	dir, err := ensureBuilt(ctx, log, key, []string{FluxCLI}, func(tmp string) error {
		fmt.Fprintf(log, "building flux CLI %s\n", key)
		mod, err := moduleDir(ctx, "flux-cli", "github.com/fluxcd/flux2/v2")
		if err != nil {
			return err
		}
		// The module cache is read-only, and -overlay may not replace files
		// in it: build a writable copy, as its own main module.
		src := filepath.Join(tmp, "src")
		if err := os.CopyFS(src, os.DirFS(mod)); err != nil {
			return fmt.Errorf("copying flux2's source: %w", err)
		}
		defer os.RemoveAll(src)
		if err := os.WriteFile(filepath.Join(src, "cmd", "flux", "manifests.embed.go"), []byte(fluxCLIManifests), 0o644); err != nil {
			return err
		}
		ldflags := "-s -w -X main.VERSION=" + strings.TrimPrefix(FluxCLIVersion, "v")
		return goBuildIn(ctx, log, src, "flux CLI", "-ldflags", ldflags, "-o", filepath.Join(tmp, FluxCLI), "./cmd/flux")
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, FluxCLI), nil
}
