//go:build tools

// Package tools pins the Argo CD release that kdgen's GitOps end-to-end test
// runs. Nothing imports it; scripts/build-test-cluster builds the multi-call
// binary named here (argocd-repo-server, argocd-application-controller and
// argocd-cmp-server are symlinks to it).
package tools

import (
	_ "github.com/argoproj/argo-cd/v3/cmd"
)
