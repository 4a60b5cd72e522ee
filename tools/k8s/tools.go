//go:build tools

// Package tools pins the Kubernetes control-plane binaries that kdgen's
// integration tests run. Nothing imports it; scripts/build-test-cluster
// builds the commands named here.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
