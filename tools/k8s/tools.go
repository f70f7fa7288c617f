//go:build tools

// The commands built from this module's dependencies (see the Makefile's
// k8s-tools), listed so `go mod tidy` keeps them.
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
