module kdgen.invalid/tools/flux/source-controller

go 1.25.0

// Copied from source-controller v1.7.3's own go.mod (its local ./api replace left out: the api
// module comes from the proxy at the version source-controller requires).
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be

require github.com/fluxcd/source-controller v1.7.3
