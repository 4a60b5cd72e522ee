"""Write allocated port numbers into KD source files, keeping everything else as it was.

Pure: text in, text out. A file is split at its ``---`` document markers; only the documents
that are KusciaDeployments needing a new ``kuscia.secretflow/allocated-ports`` annotation are
round-tripped through ruamel.yaml (which keeps their comments, key order and quoting), and
every other byte of the file is left alone. A byte order mark and the file's line endings are
kept. A JSON document stays JSON, written back in the layout it had. What cannot be kept is
refused (``CannotPin``) rather than rewritten: a JSON layout kdgen cannot reproduce, or a YAML
document whose round trip would change more than the annotation's own lines.
"""

from __future__ import annotations

import difflib
import io
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML

from kdgen.errors import InputError
from kdgen.model import ANNOTATION_ALLOCATED_PORTS, KIND_KUSCIA_DEPLOYMENT, KUSCIA_API_VERSION
from kdgen.yamlio import read_documents

BOM = "\ufeff"


class CannotPin(ValueError):
    """The document cannot take the annotation without losing its layout; says what to add."""


_MARKER = re.compile(r"^---(?=\s|$).*$\n?", re.MULTILINE)


def pin_ports(text: str, annotations: Mapping[str, str]) -> str:
    r"""Set the allocated-ports annotation of each KD named in ``annotations``.

    Documents whose annotation already has the value are not touched, so pinning twice
    changes nothing.

    >>> src = "# keep me\nkind: KusciaDeployment\napiVersion: kuscia.secretflow/v1alpha1\n"
    >>> src += "metadata:\n  name: kd  # the name\nspec: {}\n"
    >>> print(pin_ports(src, {"kd": "[]"}), end="")
    # keep me
    kind: KusciaDeployment
    apiVersion: kuscia.secretflow/v1alpha1
    metadata:
      name: kd  # the name
      annotations:
        kuscia.secretflow/allocated-ports: '[]'
    spec: {}
    """
    if text.startswith(BOM):
        return BOM + pin_ports(text[1:], annotations)
    pieces = []
    position = 0
    for marker in _MARKER.finditer(text):
        pieces.append(text[position : marker.start()])
        pieces.append(marker.group(0))
        position = marker.end()
    pieces.append(text[position:])
    return "".join(
        piece if i % 2 else _pin_document(piece, annotations) for i, piece in enumerate(pieces)
    )


def _pin_document(text: str, annotations: Mapping[str, str]) -> str:
    try:
        documents = read_documents(text, "<pin>")
    except InputError:
        return text
    body = documents[0][1] if len(documents) == 1 else None
    if not (
        isinstance(body, dict)
        and body.get("apiVersion") == KUSCIA_API_VERSION
        and body.get("kind") == KIND_KUSCIA_DEPLOYMENT
    ):
        return text
    name = (body.get("metadata") or {}).get("name")
    wanted = annotations.get(name) if isinstance(name, str) else None
    current = ((body.get("metadata") or {}).get("annotations") or {}).get(
        ANNOTATION_ALLOCATED_PORTS
    )
    if wanted is None or current == wanted:
        return text
    if text.lstrip().startswith("{"):
        return _set_json_annotation(text, wanted)
    pinned = _set_annotation(text, wanted)
    _check_kept(text, pinned, wanted)
    return pinned


def _set_json_annotation(text: str, value: str) -> str:
    """Set the annotation in a JSON document, written back in the layout it was found in."""
    body = json.loads(text)
    stripped = text.strip()
    head, tail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    for layout in _json_layouts(stripped):
        if json.dumps(body, **layout) == stripped:
            metadata = body["metadata"]
            annotations = metadata.get("annotations")
            if not isinstance(annotations, dict):
                metadata["annotations"] = annotations = {}
            annotations[ANNOTATION_ALLOCATED_PORTS] = value
            out = json.dumps(body, **layout)
            if "\r\n" in text:
                out = out.replace("\n", "\r\n")
            return head + out + tail
    raise CannotPin(
        "cannot keep the layout of this JSON document; add metadata.annotations."
        f"{json.dumps(ANNOTATION_ALLOCATED_PORTS)}: {json.dumps(value)} by hand"
    )


def _json_layouts(text: str) -> list[dict[str, Any]]:
    """The ``json.dumps`` settings that might have written ``text``."""
    lines = text.replace("\r\n", "\n").split("\n")
    layouts: list[dict[str, Any]] = []
    if len(lines) > 1:
        indent = lines[1][: len(lines[1]) - len(lines[1].lstrip())]
        if indent:
            layouts.append({"indent": indent})
    layouts.extend([{}, {"separators": (",", ":")}])
    return [
        {**layout, "ensure_ascii": ascii_only} for layout in layouts for ascii_only in (False, True)
    ]


def _annotation_line(line: str) -> bool:
    return ANNOTATION_ALLOCATED_PORTS in line or line.strip() in ("annotations:", "annotations: {}")


def _check_kept(before: str, after: str, value: str) -> None:
    """Refuse a YAML round trip that changed lines other than the annotation's own."""
    old, new = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for operation, a1, a2, b1, b2 in matcher.get_opcodes():
        if operation in ("equal", "insert"):
            continue
        changed = old[a1:a2]
        if all(_annotation_line(line) for line in changed):
            continue  # the old annotation itself
        if len(changed) == 1 and any(ANNOTATION_ALLOCATED_PORTS in line for line in new[b1:b2]):
            continue  # a flow mapping that gained the annotation
        raise CannotPin(
            f"pinning would rewrite line {a1 + 1} ({old[a1].strip()[:60]!r}) as well; add "
            f"metadata.annotations.{ANNOTATION_ALLOCATED_PORTS}: '{value}' by hand"
        )


def _set_annotation(text: str, value: str) -> str:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 1 << 30
    rt.indent(**indentation(text))
    newline = "\r\n" if "\r\n" in text else "\n"
    document: Any = rt.load(text)
    metadata = document["metadata"]
    if metadata.get("annotations") is None:
        metadata["annotations"] = {}
    metadata["annotations"][ANNOTATION_ALLOCATED_PORTS] = value
    out = io.StringIO()
    rt.dump(document, out)
    return out.getvalue().replace("\n", newline) if newline != "\n" else out.getvalue()


_BLOCK_LINE = re.compile(r"^(?P<indent>[ ]*)(?P<dash>-[ ]+)?(?P<rest>[^\s#].*?)?[ ]*(#.*)?$")


def indentation(text: str) -> dict[str, int]:
    r"""Guess how a YAML document indents, as ruamel.yaml's ``indent()`` arguments.

    ``mapping``: spaces from a key to its nested keys. ``offset``: spaces from a key to the dash
    of its list items. ``sequence``: spaces from that key to the item's content. Guessed from
    the first block of each kind; ruamel.yaml's own default (2, 2, 0) otherwise.

    >>> indentation("a:\n    b: 1\nc:\n-   d: 1\n")
    {'mapping': 4, 'sequence': 4, 'offset': 0}
    >>> indentation("a:\n  b:\n    - c\n")
    {'mapping': 2, 'sequence': 4, 'offset': 2}
    """
    found: dict[str, int] = {}
    lines = [m for m in map(_BLOCK_LINE.match, text.splitlines()) if m and m.group("rest")]
    for parent, child in itertools.pairwise(lines):
        rest = parent.group("rest")
        if parent.group("dash") or not rest.endswith(":"):
            continue
        depth = len(child.group("indent")) - len(parent.group("indent"))
        if child.group("dash"):
            if depth >= 0 and "offset" not in found:
                found["offset"] = depth
                found["sequence"] = depth + len(child.group("dash"))
        elif depth > 0:
            found.setdefault("mapping", depth)
        if len(found) == 3:
            break
    return {
        "mapping": found.get("mapping", 2),
        "sequence": found.get("sequence", 2),
        "offset": found.get("offset", 0),
    }
