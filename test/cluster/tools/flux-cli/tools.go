//go:build tools

// Package tools pins the flux command this module builds.
package tools

import _ "github.com/fluxcd/flux2/v2/cmd/flux"
