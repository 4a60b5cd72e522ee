.PHONY: lint test golden crds e2e

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test:
	scripts/test

golden:
	.venv/bin/pytest tests/test_golden.py --update-golden

crds:
	.venv/bin/kdgen crds --output-dir deploy/crds

e2e:
	.venv/bin/pytest -m cluster
