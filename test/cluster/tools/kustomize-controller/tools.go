//go:build tools

// Package tools pins the kustomize-controller command this module builds.
package tools

import _ "github.com/fluxcd/kustomize-controller"
