"""Property tests: whatever an input holds, kdgen answers with output or its own error.

Issue 10 item 5. Three sources of input, each put through every command and adapter
(``tests/hostile/targets.py``): any bytes; any YAML tree (JSON-like values and documents of
kdgen's kinds with random bodies); and a structure-aware strategy that mutates the seed's
valid KusciaDeployment and AppImage (a field replaced by another type or a random tree,
deleted, a list item repeated, a byte inserted into the text). Each run must end in output or
kdgen's own problem lines (``misbehaviour``), never another exception, exit status or a raw
control character. A fourth test runs inputs in workers started with different
``PYTHONHASHSEED`` values and requires the same bytes from each.

Hypothesis runs a fixed number of examples (``derandomize=True``, no example database), so CI
runs the same cases each time; the counts are printed at the end of the pytest run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import report
from tests.hostile.runner import Outcome, Run, decode_outcome, encode, execute
from tests.hostile.targets import lay_out, misbehaviour, runs_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "secretflow-serving"
SEED_DOCS = [
    yaml.safe_load((EXAMPLE / name).read_text(encoding="utf-8"))
    for name in ("secretflow-serving.yaml", "secretflow-serving-image.yaml")
]

EXAMPLES = int(os.environ.get("KDGEN_PROPERTY_EXAMPLES", "25"))
"""Examples per property test (each example goes through every command and adapter)."""
SEED_EXAMPLES = 10
"""Examples of the hash-seed test, each run under every seed of ``HASH_SEEDS``."""
HASH_SEEDS = ("0", "1", "4242")

SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(["", "alice", "cross-domain", "2024-01-02", "yes", "\x1b[31m", "a\u202eb"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=25,
)
_KINDS = [
    ("kuscia.secretflow/v1alpha1", "KusciaDeployment"),
    ("kuscia.secretflow/v1alpha1", "AppImage"),
    ("kdgen.kuscia.secretflow/v1alpha1", "Inventory"),
]
documents = (
    st.builds(
        lambda kind, meta, spec: {
            "apiVersion": kind[0],
            "kind": kind[1],
            "metadata": meta,
            "spec": spec,
        },
        st.sampled_from(_KINDS),
        st.fixed_dictionaries({"name": _text}, optional={"namespace": _text, "labels": trees}),
        trees,
    )
    | trees
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


def _mutate(doc: Any, path: tuple[Any, ...], operation: str, replacement: Any) -> Any:
    if not path:
        return replacement
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "repeat" and isinstance(parent, list):
        parent.insert(last, json.loads(json.dumps(parent[last])))
    else:
        parent[last] = replacement
    return doc


@st.composite
def mutated_seed(draw: st.DrawFn) -> tuple[list[Any], bytes]:
    """The seed's KD and AppImage with a few structure-aware mutations, and their YAML."""
    docs = json.loads(json.dumps(SEED_DOCS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        which = draw(st.integers(min_value=0, max_value=len(docs) - 1))
        path = draw(st.sampled_from(list(_paths(docs[which]))))
        operation = draw(st.sampled_from(["replace", "delete", "repeat", "retype"]))
        replacement: Any
        if operation == "retype":
            replacement = draw(st.sampled_from([None, [], {}, 0, -1, 70000, "x", True, 1.5]))
        else:
            replacement = draw(trees)
        docs[which] = _mutate(docs[which], path, operation, replacement) if path else replacement
    text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True).encode()
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=3)) + text[at:]
    return docs, text


def _check_all(files: dict[str, bytes], stdin: bytes, items: list[Any] | None = None) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        lay_out(folder, files)
        for run in runs_for(sorted(files), stdin, items):
            outcome = execute(run, folder)
            problem = misbehaviour(run, outcome)
            assert not problem, problem


def _dump(docs: list[Any]) -> bytes:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True).encode()


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_give_output_or_a_kdgen_error(data: bytes) -> None:
    report.add("property examples", 1)
    _check_all({"input.yaml": data}, data)


@SETTINGS
@given(docs=st.lists(documents, min_size=1, max_size=3))
def test_any_yaml_tree_gives_output_or_a_kdgen_error(docs: list[Any]) -> None:
    report.add("property examples", 1)
    text = _dump(docs)
    _check_all({"input.yaml": text}, text, items=docs)


@SETTINGS
@given(case=mutated_seed())
def test_mutated_seed_gives_output_or_a_kdgen_error(case: tuple[list[Any], bytes]) -> None:
    report.add("property examples", 1)
    docs, text = case
    _check_all({"kd.yaml": text}, text, items=docs)


@pytest.fixture(scope="module")
def seeded_workers() -> Iterator[list[subprocess.Popen[str]]]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in HASH_SEEDS
    ]
    yield workers
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(timeout=60)
        assert worker.stdout is not None
        worker.stdout.close()


def _ask(worker: subprocess.Popen[str], run: Run, folder: Path) -> Outcome:
    assert worker.stdin is not None
    assert worker.stdout is not None
    worker.stdin.write(encode(run, folder) + "\n")
    worker.stdin.flush()
    return decode_outcome(worker.stdout.readline())


@settings(SETTINGS, max_examples=SEED_EXAMPLES)
@given(docs=st.lists(documents, min_size=1, max_size=2), case=mutated_seed())
def test_same_bytes_under_any_hash_seed(
    seeded_workers: list[subprocess.Popen[str]], docs: list[Any], case: tuple[list[Any], bytes]
) -> None:
    report.add("property examples", 1)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        lay_out(folder, {"a.yaml": _dump(docs), "kd.yaml": case[1]})
        for run in runs_for(["a.yaml", "kd.yaml"], case[1], case[0])[:5]:
            outcomes = {_ask(worker, run, folder) for worker in seeded_workers}
            assert len(outcomes) == 1, (run, outcomes)
