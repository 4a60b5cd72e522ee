"""kdgen: expand Kuscia KusciaDeployments into per-domain Kubernetes manifests, GitOps-style."""

__version__ = "0.1.0"
