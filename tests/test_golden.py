"""Golden cases: every directory under golden/ is one test (see tests/golden.py)."""

from __future__ import annotations

import random
import re

import pytest

from kdgen.load import Source
from tests.golden import GOLDEN, case_names, case_sources, run_case

EXPECTED_FILES = ("expected.yaml", "warnings.txt", "errors.txt")


@pytest.mark.parametrize("name", case_names())
def test_golden(name: str, update_golden: bool) -> None:
    case = GOLDEN / name
    outcome = run_case(case)
    if update_golden:
        for file in EXPECTED_FILES:
            (case / file).unlink(missing_ok=True)
        for file, text in outcome.files.items():
            (case / file).write_text(text, encoding="utf-8")
        return
    committed = {
        f: (case / f).read_text(encoding="utf-8") for f in EXPECTED_FILES if (case / f).exists()
    }
    assert committed, f"golden/{name} has no expected file; run pytest --update-golden"
    assert outcome.files == committed


@pytest.mark.parametrize("name", case_names())
def test_input_order_does_not_matter(name: str) -> None:
    """Shuffling the input files and the documents inside them gives the same bytes."""
    case = GOLDEN / name
    baseline = run_case(case)
    sources = case_sources(case)
    rng = random.Random(name)
    for _ in range(3):
        shuffled = [_shuffle_documents(s, rng) for s in sources]
        rng.shuffle(shuffled)
        assert run_case(case, shuffled).files.keys() == baseline.files.keys()
        if "expected.yaml" in baseline.files:
            assert (
                run_case(case, shuffled).files["expected.yaml"] == baseline.files["expected.yaml"]
            )


def _shuffle_documents(source: Source, rng: random.Random) -> Source:
    documents = [d for d in re.split(r"^---\s*$", source.text, flags=re.MULTILINE) if d.strip()]
    rng.shuffle(documents)
    return Source(source.name, "---\n".join(d.strip("\n") + "\n" for d in documents))


@pytest.mark.parametrize("name", case_names())
def test_case_says_which_rule_it_covers(name: str) -> None:
    """Each case has a one-line README.md naming the rule (and spec section) it covers."""
    readme = GOLDEN / name / "README.md"
    assert readme.is_file(), f"golden/{name}/README.md is missing"
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert lines[0].strip()
