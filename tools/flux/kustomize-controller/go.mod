module kdgen.invalid/tools/flux/kustomize-controller

go 1.25.0

// Copied from kustomize-controller v1.7.3's own go.mod (its local ./api replace left out: the
// api module comes from the proxy at the version kustomize-controller requires).
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be

replace (
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.20.1
	sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.20.1
)

replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1

require github.com/fluxcd/kustomize-controller v1.7.3
