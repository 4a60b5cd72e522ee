"""Run kdgen commands and adapters in-process, capturing what they write, for hostile tests.

A ``Run`` is what a user or a tool does: argv (``generate x.yaml``, ``plugin krm`` ...), bytes
on standard input, environment, working folder. ``execute`` runs it through the real click
entry point (``kdgen.cli.main``) and returns exit code, stdout, stderr, and the traceback of
any exception that was not kdgen's own exit, which the tests then forbid.

``python -m tests.hostile.runner`` is the worker the corpus and the hash-seed property test
start under resource limits: it reads runs as JSON lines on stdin and answers one JSON line
each, so one process serves many runs.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kdgen.cli import main


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    crash: str = ""
    """The traceback of an exception other than a clean exit; "" when there was none."""


class Timeout(Exception):
    pass


def execute(run: Run, folder: Path, *, seconds: int = 0) -> Outcome:
    """Run ``run`` with ``folder`` / ``run.cwd`` as working directory."""
    previous = Path.cwd()
    os.chdir(folder / run.cwd)
    if seconds:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(seconds)
    try:
        result = CliRunner().invoke(
            main, list(run.argv), input=run.stdin, env=run.env, catch_exceptions=True
        )
    except Timeout:
        return Outcome(-1, "", "", crash=f"timeout after {seconds} s")
    finally:
        signal.alarm(0)
        os.chdir(previous)
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        info = result.exc_info
        crash = "".join(traceback.format_exception(*info)) if info else repr(result.exception)
    return Outcome(result.exit_code, result.stdout, result.stderr, crash)


def _alarm(_signum: int, _frame: Any) -> None:
    raise Timeout


def encode(run: Run, folder: Path) -> str:
    body = {**asdict(run), "stdin": base64.b64encode(run.stdin).decode(), "folder": str(folder)}
    return json.dumps(body)


def decode_outcome(line: str) -> Outcome:
    return Outcome(**json.loads(line))


def serve() -> None:
    """Answer each JSON run on stdin with its JSON outcome on stdout."""
    seconds = int(os.environ.get("KDGEN_TEST_RUN_SECONDS", "0"))
    out = sys.stdout
    for line in sys.stdin:
        body = json.loads(line)
        run = Run(
            argv=tuple(body["argv"]),
            stdin=base64.b64decode(body["stdin"]),
            env=body["env"],
            cwd=body["cwd"],
        )
        try:
            outcome = execute(run, Path(body["folder"]), seconds=seconds)
        except MemoryError:
            outcome = Outcome(-1, "", "", crash="MemoryError")
        out.write(json.dumps(asdict(outcome)) + "\n")
        out.flush()


if __name__ == "__main__":
    serve()
