// Package fluxbuild builds a Flux Kustomization's desired objects as
// kustomize-controller v1.9.6 builds them, from a GitLab repository archive.
//
// Extract unpacks the archive GitLab sends, which is hostile input: no entry
// outside a private temporary directory, sizes and entry counts bounded,
// links that leave the tree refused and none written, as source-controller
// writes none into its artifact. ApplySourceIgnore then leaves out what
// source-controller leaves out of a GitRepository's artifact.
package fluxbuild
