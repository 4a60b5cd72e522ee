"""The hostile corpus (``tests/hostile/corpus.py``): each input, its exact outcome, files unchanged.

Issue 10 "Done when": at least 80 hostile inputs across every class, run under a time and
memory cap, their count reported at the end of the run (``kdgen hostile corpus inputs: N``).

All cases run in one worker process (``python -m tests.hostile.runner``) started with
``RLIMIT_AS`` (address space, so memory) and ``RLIMIT_CPU`` (CPU seconds for the whole
corpus), and an alarm of ``CASE_SECONDS`` per case: an input that made kdgen allocate or loop
without bound fails its case (or kills the worker) instead of the machine. For each case the
test checks the exit status, the first problem line exactly (``expected.txt``) and the phrase
the case names, that no file outside the case's ``writes`` changed, and what ``after``,
``after_modes`` and ``after_json`` require.
"""

from __future__ import annotations

import json
import os
import re
import resource
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile import report
from tests.hostile.corpus import CASES, Case
from tests.hostile.runner import Outcome, Run, decode_outcome, encode

REPO = Path(__file__).resolve().parent.parent
EXPECTED = REPO / "tests" / "hostile" / "expected.txt"
MEMORY_BYTES = 1536 * 1024 * 1024
CPU_SECONDS = 600
CASE_SECONDS = 30


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


@pytest.fixture(scope="module")
def worker() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "KDGEN_TEST_RUN_SECONDS": str(CASE_SECONDS), "PYTHONHASHSEED": "0"},
        preexec_fn=_limits,
    )
    yield process
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    process.wait(timeout=60)
    process.stdout.close()


def _expected() -> dict[str, tuple[int, str]]:
    table = {}
    if EXPECTED.exists():
        for line in EXPECTED.read_text(encoding="utf-8").splitlines():
            name, code, first = line.split("\t", 2)
            table[name] = (int(code), first)
    return table


def lay_out(folder: Path, case: Case) -> None:
    for name, data in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    for name, target in case.links.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    for name, target in case.hardlinks.items():
        os.link(folder / target, folder / name)
    for name in case.fifos:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(folder / name)
    for name, mode in case.modes.items():
        (folder / name).chmod(mode)
    (folder / case.cwd).mkdir(parents=True, exist_ok=True)


def snapshot(folder: Path) -> dict[str, tuple[str, bytes, int]]:
    """Every path under ``folder``: its type, content (or link target) and mode."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root) / name
            status = os.lstat(path)
            relative = path.relative_to(folder).as_posix()
            if stat.S_ISLNK(status.st_mode):
                found[relative] = ("link", os.readlink(path).encode(), 0)
            elif stat.S_ISREG(status.st_mode):
                found[relative] = ("file", path.read_bytes(), stat.S_IMODE(status.st_mode))
            else:
                found[relative] = ("other", b"", stat.S_IMODE(status.st_mode))
    return found


def first_line(outcome: Outcome, folder: Path) -> str:
    """The line that says what happened: the first problem line, else the first line."""
    lines = outcome.stderr.replace(os.path.realpath(folder), "<case>").splitlines()
    problems = [line for line in lines if line.startswith(("error: ", "Error: "))]
    return (problems or lines or [""])[0]


def _unchanged(
    before: dict[str, tuple[str, bytes, int]],
    after: dict[str, tuple[str, bytes, int]],
    writes: tuple[str, ...],
) -> list[str]:
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    allowed = tuple(w.rstrip("/") for w in writes)
    return sorted(p for p in changed if not any(p == w or p.startswith(f"{w}/") for w in allowed))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(
    case: Case, worker: subprocess.Popen[str], tmp_path: Path, update_golden: bool
) -> None:
    report.add("hostile corpus inputs", 1)
    folder = tmp_path / "case"
    folder.mkdir()
    lay_out(folder, case)
    before = snapshot(folder)
    assert worker.stdin is not None
    assert worker.stdout is not None
    run = Run(tuple(case.argv), stdin=case.stdin, env=dict(case.env), cwd=case.cwd)
    worker.stdin.write(encode(run, folder) + "\n")
    worker.stdin.flush()
    answer = worker.stdout.readline()
    assert answer, "the worker died (memory or CPU limit?)"
    outcome = decode_outcome(answer)
    assert not outcome.crash, outcome.crash
    line = first_line(outcome, folder)
    if update_golden:
        table = _expected()
        table[case.name] = (outcome.exit_code, line)
        EXPECTED.write_text(
            "".join(f"{n}\t{c}\t{f}\n" for n, (c, f) in sorted(table.items())), encoding="utf-8"
        )
    assert outcome.exit_code == case.exit, outcome.stderr
    assert case.says in line, outcome.stderr
    assert _expected().get(case.name) == (outcome.exit_code, line)
    after = snapshot(folder)
    if case.exit == 0 and not case.writes:
        assert _unchanged(before, after, ()) == []
    else:
        assert _unchanged(before, after, case.writes) == []
    for name, content in case.after.items():
        want = content.encode() if isinstance(content, str) else content
        assert (folder / name).read_bytes() == want, name
    for name, mode in case.after_modes.items():
        assert stat.S_IMODE(os.lstat(folder / name).st_mode) == mode, name
    for name in case.after_json:
        assert json.loads((folder / name).read_text(encoding="utf-8"))


def test_corpus_covers_every_class() -> None:
    kinds = {case.kind for case in CASES}
    assert kinds == {"escape", "destroy", "exhaust", "crash", "silent", "escape-chars"}
    assert len(CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)
    assert set(_expected()) == {case.name for case in CASES}


def test_security_md_names_only_cases_that_exist() -> None:
    """Every corpus case SECURITY.md's limits table cites is a real case (and there are some)."""
    text = (REPO / "SECURITY.md").read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    cited = {
        name for line in table for name in re.findall(r"`([a-z0-9-]+)`", line.rsplit("|", 2)[-2])
    }
    assert len(cited) >= 20
    assert cited <= {case.name for case in CASES}
