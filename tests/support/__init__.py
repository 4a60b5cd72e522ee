"""Test support code: importable from the tests and runnable from a checkout, never installed.

``tests/support/cluster.py`` is the real control plane the e2e tests (and the GitOps harnesses)
run against. It is not part of the ``kdgen`` package, so ``pip install kdgen`` does not ship it;
from the repository root, ``python -m tests.support.cluster up`` starts the same cluster by hand.
"""
