#!/bin/sh
# kdgen as a kubectl plugin: installing kdgen puts kubectl-kdgen next to kdgen, and kubectl
# runs any kubectl-* program on PATH. Run from the repository root.
set -e
kubectl plugin list
kubectl kdgen generate examples/secretflow-serving
