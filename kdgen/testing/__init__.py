"""Test support code for kdgen that is importable from tests and from the command line.

It lives inside the package (not under ``tests/``) so that ``python -m kdgen.testing.cluster``
can bring a real control plane up for manual debugging with the same code the tests use.
Nothing in the kdgen pipeline imports it.
"""
