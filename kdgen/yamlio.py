"""The one module that touches a YAML library for reading and writing manifests.

Reading uses PyYAML's C loader when the wheel has it (same results, faster); writing produces
a stable block-style stream: no line folding, multi-line strings as literal blocks, keys in the
order the builders put them. Pure: text in, objects out, and back; no file access here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from kdgen.errors import InputError, Problem

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Safe dumper that writes multi-line strings as ``|`` blocks and never uses aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        """Write a shared object out in full each time: manifests must not hold anchors."""
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def read_documents(text: str, source: str) -> list[tuple[int, Any]]:
    r"""Parse a YAML (or JSON) stream into ``(1-based index, document)`` pairs.

    Empty documents (``---`` with nothing after it) are dropped but still counted, so the
    index matches what an editor shows.

    Raises:
        InputError: the text is not valid YAML; the problem names the line and column.

    >>> read_documents("a: 1\n---\n---\nb: 2\n", "x.yaml")
    [(1, {'a': 1}), (3, {'b': 2})]
    """
    documents: list[tuple[int, Any]] = []
    index = 0
    try:
        for index, body in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
            if body is not None:
                documents.append((index, body))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(
            [Problem(f"invalid YAML{where}: {problem}", source=source, doc_index=index + 1)]
        ) from err
    return documents


def dump_document(document: Any) -> str:
    r"""Serialise one object as block-style YAML, keys in insertion order.

    >>> print(dump_document({"b": 1, "a": "x\ny\n"}), end="")
    b: 1
    a: |
      x
      y
    """
    return _dump([document], explicit_start=False)


def dump_documents(documents: Iterable[Any]) -> str:
    """Serialise objects as one multi-document stream, each preceded by ``---``."""
    return _dump(list(documents), explicit_start=True)


def _dump(documents: list[Any], *, explicit_start: bool) -> str:
    if not documents:
        return ""
    text: str = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        explicit_start=explicit_start,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text
