// Package fluxbuild builds a Flux Kustomization's desired objects as
// kustomize-controller v1.9.6 builds them, from a GitLab repository archive.
//
// The pieces, in the order a caller uses them:
//
//   - Extract unpacks the archive GitLab sends (hostile input: no entry
//     outside a private temporary directory, sizes and entry counts bounded,
//     links that leave the tree refused and none written, as source-controller
//     writes none into its artifact);
//   - ApplySourceIgnore leaves out what source-controller leaves out of a
//     GitRepository's artifact (.sourceignore, spec.ignore, the defaults);
//   - Build runs Flux's own generator and kustomize build
//     (github.com/fluxcd/pkg/kustomize, the version kustomize-controller
//     v1.9.6 pins), never fetching a remote base, then postBuild
//     substitution, the owner labels, Flux's normalisation and
//     spec.commonMetadata, and reports the values it took from Secrets so that
//     callers can mask them.
//
// Archive the whole repository, not only spec.path: a Kustomization may
// refer to ../base, and .sourceignore files above the path count too. With
// the archive at the GitRepository's artifact revision, its spec.ignore, and
// the Kustomization as read from the cluster, Result.Objects are the objects
// kustomize-controller applies, so a check of parity with the real
// controller is: apply with Flux, build here, and diff with no change.
package fluxbuild
