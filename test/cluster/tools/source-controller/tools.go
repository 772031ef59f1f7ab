//go:build tools

// Package tools pins the source-controller command this module builds.
package tools

import _ "github.com/fluxcd/source-controller"
