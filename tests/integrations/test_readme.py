"""README's integration snippets are copies of tested example files.

Every fenced block between the ``integrations`` markers follows a ``<!-- snippet: PATH -->``
comment. A YAML block must be a run of consecutive lines of PATH; each line of a shell block
must be a line of PATH, or a command PATH's header shows as ``#   <command>`` (the tests run
those commands).
"""

from __future__ import annotations

import re

import pytest

from tests.integrations.paths import REPO

README = REPO / "README.md"
_SNIPPET = re.compile(r"<!-- snippet: (?P<path>\S+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
_FENCE = re.compile(r"^```\w*$", re.M)


def section() -> str:
    text = README.read_text()
    start, end = "<!-- integrations:start -->", "<!-- integrations:end -->"
    assert text.count(start) == text.count(end) == 1
    return text[text.index(start) : text.index(end)]


def snippets() -> list[tuple[str, str, str]]:
    return [(m["path"], m["lang"], m["body"]) for m in _SNIPPET.finditer(section())]


def test_every_block_is_a_snippet() -> None:
    assert snippets()
    assert len(_FENCE.findall(section())) == 2 * len(snippets())


def test_the_section_covers_every_tool() -> None:
    headings = re.findall(r"^### (.*)$", section(), re.M)
    for tool in ("kustomize", "kpt", "Argo CD", "Flux", "CI", "kubectl"):
        assert any(tool in heading for heading in headings), tool


@pytest.mark.parametrize(
    ("path", "lang", "body"), snippets(), ids=[f"{p}:{i}" for i, (p, _, _) in enumerate(snippets())]
)
def test_snippet_is_copied_from_its_file(path: str, lang: str, body: str) -> None:
    lines = (REPO / path).read_text().splitlines()
    block = body.splitlines()
    if lang == "sh":
        commands = {line.removeprefix("#   ") for line in lines}
        assert [line for line in block if line not in commands] == []
    else:
        starts = [i for i, line in enumerate(lines) if line == block[0]]
        assert any(lines[i : i + len(block)] == block for i in starts), f"not a run of {path}"
