//go:build tools

// Package tools pins Flux's source-controller, which kdgen's GitOps end-to-end tests run
// (scripts/build-flux builds it). Nothing imports this package.
package tools

import _ "github.com/fluxcd/source-controller"
