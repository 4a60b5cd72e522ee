//go:build tools

// Package tools pins Flux's kustomize-controller, which kdgen's GitOps end-to-end tests run
// (scripts/build-flux builds it). Nothing imports this package.
package tools

import _ "github.com/fluxcd/kustomize-controller"
