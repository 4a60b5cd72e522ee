"""Write allocated port numbers into KD source files, keeping everything else as it was.

Pure: text in, text out. A file is split at its ``---`` document markers; only the documents
that are KusciaDeployments needing a new ``kuscia.secretflow/allocated-ports`` annotation are
round-tripped through ruamel.yaml (which keeps their comments, key order and quoting), and
every other byte of the file is left alone.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML

from kdgen.model import ANNOTATION_ALLOCATED_PORTS, KIND_KUSCIA_DEPLOYMENT, KUSCIA_API_VERSION

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
        body = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
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
    return _set_annotation(text, wanted)


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
