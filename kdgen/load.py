"""Sort raw documents into the inputs of a generation run.

Pure: takes ``(source name, text)`` pairs that ``sources.py`` read, parses them and files each
document by kind. It checks only what it needs to file a document (a mapping with a known
``apiVersion``/``kind``); ``validate.py`` checks everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kdgen import limits
from kdgen.errors import InputError, Problem
from kdgen.model import (
    INVENTORY_API_VERSION,
    KIND_APP_IMAGE,
    KIND_INVENTORY,
    KIND_KUSCIA_DEPLOYMENT,
    KUSCIA_API_VERSION,
)
from kdgen.yamlio import Budget, read_documents

_KINDS = {
    (KUSCIA_API_VERSION, KIND_KUSCIA_DEPLOYMENT),
    (KUSCIA_API_VERSION, KIND_APP_IMAGE),
    (INVENTORY_API_VERSION, KIND_INVENTORY),
}
_SKIPPED_KINDS = {"Kustomization", "Component"}
"""Kustomize's own files may sit beside the inputs in a GitOps folder; they are not ours."""


@dataclass(frozen=True, slots=True)
class Source:
    """The text of one input, and where it came from (a path, or ``<stdin>``)."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed input document and its position, so problems can point at it."""

    source: str
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        """The document's ``kind``."""
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        """``metadata.name``, or ``""``."""
        return str(_metadata(self.body).get("name", "") or "")

    @property
    def namespace(self) -> str:
        """``metadata.namespace``, or ``""``."""
        return str(_metadata(self.body).get("namespace", "") or "")

    @property
    def resource(self) -> str:
        """``Kind namespace/name`` (``Kind name`` without a namespace), for messages."""
        name = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {name}".strip()

    def problem(self, field: str, message: str, **extra: Any) -> Problem:
        """Build a Problem located at ``field`` of this document."""
        return Problem(
            message,
            source=self.source,
            doc_index=self.index,
            resource=self.resource,
            field=field,
            **extra,
        )


@dataclass(frozen=True, slots=True)
class Inputs:
    """Every document of a run, filed by kind, each tuple in input order."""

    kusciadeployments: tuple[Document, ...] = ()
    app_images: tuple[Document, ...] = ()
    inventories: tuple[Document, ...] = ()


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, dict) else {}


def parse_sources(sources: Sequence[Source]) -> Inputs:
    """Parse every source and file its documents by kind.

    The sources share one ``Budget`` (``kdgen.limits``): documents, YAML nodes and aliases
    are counted for the run, not per file, and so are their bytes.

    Raises:
        InputError: with every unparsable file and unknown document at once.
    """
    problems: list[Problem] = []
    budget = Budget()
    size = sum(len(source.text) for source in sources)
    if size > limits.MAX_INPUT_BYTES:
        raise InputError(
            [Problem(f"inputs are larger than {limits.MAX_INPUT_BYTES} bytes in all ({size})")]
        )
    filed: dict[str, list[Document]] = {
        KIND_KUSCIA_DEPLOYMENT: [],
        KIND_APP_IMAGE: [],
        KIND_INVENTORY: [],
    }
    for source in sources:
        try:
            documents = read_documents(source.text, source.name, budget)
        except InputError as err:
            problems.extend(err.problems)
            continue
        for index, body in documents:
            if not isinstance(body, dict):
                problems.append(Problem("document is not a mapping", source.name, index))
                continue
            key = (body.get("apiVersion"), body.get("kind"))
            if not all(isinstance(part, str | None) for part in key):
                problems.append(
                    Problem("apiVersion and kind must be strings", source.name, index, field="")
                )
            elif key in _KINDS:
                filed[str(key[1])].append(Document(source.name, index, body))
            elif body.get("kind") not in _SKIPPED_KINDS:
                problems.append(
                    Problem(
                        f"unknown document apiVersion {key[0]!r} kind {key[1]!r}; kdgen reads "
                        f"{KUSCIA_API_VERSION} {KIND_KUSCIA_DEPLOYMENT} and {KIND_APP_IMAGE}, "
                        f"and {INVENTORY_API_VERSION} {KIND_INVENTORY}",
                        source.name,
                        index,
                    )
                )
    if problems:
        raise InputError(problems)
    return Inputs(
        kusciadeployments=tuple(filed[KIND_KUSCIA_DEPLOYMENT]),
        app_images=tuple(filed[KIND_APP_IMAGE]),
        inventories=tuple(filed[KIND_INVENTORY]),
    )
