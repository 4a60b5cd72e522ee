"""The one module that touches a YAML library for reading and writing manifests.

Reading uses PyYAML's C loader when the wheel has it (same results, faster); writing produces
a stable block-style stream: no line folding, multi-line strings as literal blocks, keys in the
order the builders put them. Pure: text in, objects out, and back; no file access here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from kdgen import limits
from kdgen.emit import AMBIGUOUS, Unsupported, emit_document
from kdgen.errors import InputError, Problem

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Safe dumper that writes multi-line strings as ``|`` blocks and never uses aliases.

    It is the reference ``kdgen.emit`` matches, and writes what that writer leaves to it.
    """

    def ignore_aliases(self, data: Any) -> bool:
        """Write a shared object out in full each time: manifests must not hold anchors."""
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # U+0085, U+2028 and U+2029 are line breaks to YAML 1.1 and plain characters to 1.2: only
    # escapes in double quotes read the same in both.
    if "\x85" in value or "\u2028" in value or "\u2029" in value:
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
# Quote what other YAML readers (1.2, Go's yaml.v2) would not read back as a string.
_Dumper.add_implicit_resolver("tag:kdgen,2026:ambiguous", AMBIGUOUS, None)


@dataclass(slots=True)
class Budget:
    """What a run may still read: documents, YAML nodes and aliases, shared by its streams."""

    documents: int = limits.MAX_DOCUMENTS
    nodes: int = limits.MAX_YAML_NODES
    aliases: int = limits.MAX_ALIASES


def read_documents(text: str, source: str, budget: Budget | None = None) -> list[tuple[int, Any]]:
    r"""Parse a YAML (or JSON) stream into ``(1-based index, document)`` pairs.

    Empty documents (``---`` with nothing after it) are dropped but still counted, so the
    index matches what an editor shows. Only JSON-compatible YAML is read, as the apiserver's
    strict decoding would take it: strings, numbers, booleans, null, lists and mappings with
    string keys, each key once. Any other tag (``!!binary``, ``!!set``, ``!!timestamp``, custom
    ``!tags``), a duplicate key, NaN or infinity, and a stream beyond the bounds of
    ``kdgen.limits`` is an error (``budget``, when given, is shared with the run's other
    streams). Unquoted dates stay strings, as kubectl sends them.

    Raises:
        InputError: the first problem of the stream; it names the line and column.

    >>> read_documents("a: 1\n---\n---\nb: 2\n", "x.yaml")
    [(1, {'a': 1}), (3, {'b': 2})]
    >>> read_documents("day: 2024-01-02\n", "x.yaml")
    [(1, {'day': '2024-01-02'})]
    >>> read_documents("a: 1\na: 2\n", "x.yaml")
    Traceback (most recent call last):
    ...
    kdgen.errors.InputError: x.yaml#1: line 2, column 1: duplicate key 'a' (first at line 1)
    """
    return _StreamReader(source, budget or Budget()).read(text)


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_INT64 = 1 << 63


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 implicit types without timestamps: a date-like plain scalar is a string."""

    def __init__(self) -> None:
        super().__init__()
        self.yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
            for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
        }


_RESOLVER = _Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class _Failure(Exception):
    """A problem at a position of the stream, turned into an InputError by the reader."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


@dataclass(slots=True)
class _Open:
    """A mapping or list being built, and what it needs to finish."""

    value: dict[str, Any] | list[Any]
    anchor: str | None
    first_node: int
    mark: Any
    key: Any = None
    key_mark: Any = None
    has_key: bool = False
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    merge_pending: bool = False


class _StreamReader:
    """Builds documents from parser events, iteratively, checking every bound on the way."""

    def __init__(self, source: str, budget: Budget) -> None:
        self.source = source
        self.budget = budget
        self.index = 0
        self.nodes = 0

    def read(self, text: str) -> list[tuple[int, Any]]:
        documents: list[tuple[int, Any]] = []
        try:
            if len(text) > limits.MAX_INPUT_BYTES:
                raise _Failure(None, f"input is larger than {limits.MAX_INPUT_BYTES} bytes")
            for index, body in self._documents(text):
                if body is not None:
                    documents.append((index, body))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            if isinstance(err, yaml.reader.ReaderError):
                where = _position(text, err.position)
                code = err.character if isinstance(err.character, int) else ord(err.character)
                problem = f"character U+{code:04X} is not allowed in YAML"
            raise self._error(f"invalid YAML{where}: {problem}") from err
        except _Failure as err:
            where = f"line {err.mark.line + 1}, column {err.mark.column + 1}: " if err.mark else ""
            raise self._error(f"{where}{err.message}") from err
        return documents

    def _error(self, message: str) -> InputError:
        return InputError([Problem(message, source=self.source, doc_index=max(self.index, 1))])

    def _documents(self, text: str) -> Iterator[tuple[int, Any]]:
        stack: list[_Open] = []
        anchors: dict[str, tuple[Any, int]] = {}
        root: Any = None
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                self.index += 1
                self.budget.documents -= 1
                if self.budget.documents < 0:
                    raise _Failure(
                        event.start_mark, f"more than {limits.MAX_DOCUMENTS} documents in one run"
                    )
                anchors, root = {}, None
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                yield self.index, root
                continue
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                self._count(event.start_mark, 1)
                if len(stack) >= limits.MAX_DEPTH:
                    raise _Failure(
                        event.start_mark, f"nested deeper than {limits.MAX_DEPTH} levels"
                    )
                mapping = isinstance(event, yaml.MappingStartEvent)
                self._check_tag(event, _MAP if mapping else _SEQ)
                container: dict[str, Any] | list[Any] = {} if mapping else []
                stack.append(_Open(container, event.anchor, self.nodes, event.start_mark))
                continue
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                done = stack.pop()
                value = done.value
                if isinstance(value, dict):
                    for merged in done.merges:
                        for key, item in merged.items():
                            value.setdefault(key, item)
                size = self.nodes - done.first_node + 1
                if done.anchor is not None:
                    anchors[done.anchor] = (value, size)
                mark = done.mark
            elif isinstance(event, yaml.AliasEvent):
                self.budget.aliases -= 1
                if self.budget.aliases < 0:
                    raise _Failure(
                        event.start_mark, f"more than {limits.MAX_ALIASES} aliases in one run"
                    )
                if event.anchor not in anchors:
                    raise _Failure(
                        event.start_mark,
                        f"alias *{event.anchor} does not refer to an earlier, complete node",
                    )
                value, size = anchors[event.anchor]
                self._count(event.start_mark, size)
                mark = event.start_mark
            elif isinstance(event, yaml.ScalarEvent):
                self._count(event.start_mark, 1)
                value = self._scalar(event)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
                mark = event.start_mark
                if stack and self._merge_key(stack[-1], event, value):
                    continue
            else:
                continue
            if not stack:
                root = value
            else:
                self._add(stack[-1], value, mark)

    def _count(self, mark: Any, nodes: int) -> None:
        self.nodes += nodes
        self.budget.nodes -= nodes
        if self.budget.nodes < 0:
            raise _Failure(
                mark,
                f"more than {limits.MAX_YAML_NODES} YAML nodes in one run (an alias counts as "
                "the nodes it repeats)",
            )

    @staticmethod
    def _check_tag(event: Any, plain: str) -> None:
        tag = event.tag
        if tag is not None and tag not in ("!", plain):
            raise _Failure(event.start_mark, _tag_message(tag))

    @staticmethod
    def _merge_key(top: _Open, event: Any, value: Any) -> bool:
        if not isinstance(top.value, dict) or top.has_key or top.merge_pending:
            return False
        if event.tag is None and event.implicit[0] and event.value == "<<":
            top.merge_pending = True
            return True
        return False

    def _add(self, top: _Open, value: Any, mark: Any) -> None:
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if top.merge_pending:
            top.merge_pending = False
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(item, dict) for item in merged):
                raise _Failure(mark, "a merge key (<<) takes a mapping or a list of mappings")
            top.merges.extend(reversed(merged))
            return
        if not top.has_key:
            if not isinstance(value, str):
                raise _Failure(mark, f"mapping key {_show(value)} is not a string; quote it")
            if value in top.key_lines:
                raise _Failure(
                    mark, f"duplicate key {value!r} (first at line {top.key_lines[value]})"
                )
            top.key_lines[value] = mark.line + 1
            top.key, top.key_mark, top.has_key = value, mark, True
            return
        top.value[top.key] = value
        top.has_key = False

    @staticmethod
    def _scalar(event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit
            )
        if tag in (_STR, _MERGE):  # a plain << is a merge key only where a key goes
            return event.value
        if tag not in (_INT, _FLOAT, _BOOL, _NULL):
            raise _Failure(event.start_mark, _tag_message(tag))
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return _CONSTRUCTOR.construct_yaml_bool(node)
            if tag == _INT:
                number = _CONSTRUCTOR.construct_yaml_int(node)
                if not -_INT64 <= number < _INT64:
                    raise _Failure(event.start_mark, "integer does not fit in 64 bits")
                return number
            real = _CONSTRUCTOR.construct_yaml_float(node)
        except (ValueError, KeyError, IndexError, TypeError, yaml.YAMLError) as err:
            if tag == _INT and event.value.lstrip("+-").isdigit():
                raise _Failure(event.start_mark, "integer does not fit in 64 bits") from err
            raise _Failure(
                event.start_mark, f"{_show(event.value)} is not a valid {tag.rsplit(':', 1)[-1]}"
            ) from err
        if not math.isfinite(real):
            raise _Failure(event.start_mark, f"{_show(event.value)} is not a JSON number")
        return real


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f" at line {line}, column {column}"


def _tag_message(tag: str) -> str:
    short = tag.replace("tag:yaml.org,2002:", "!!")
    return (
        f"YAML tag {_show(short)} is not allowed: kdgen reads JSON-compatible YAML (strings, "
        "numbers, booleans, null, lists and mappings)"
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def dump_document(document: Any) -> str:
    r"""Serialise one object as block-style YAML, keys in insertion order.

    >>> print(dump_document({"b": 1, "a": "x\ny\n"}), end="")
    b: 1
    a: |
      x
      y
    """
    try:
        text, open_ended = emit_document(document)
    except Unsupported:
        return _pyyaml([document], explicit_start=False)
    return text + "...\n" if open_ended else text


def dump_documents(documents: Iterable[Any]) -> str:
    """Serialise objects as one multi-document stream, each preceded by ``---``."""
    return "".join(iter_documents(documents))


def iter_documents(documents: Iterable[Any]) -> Iterator[str]:
    """Yield the stream of ``dump_documents`` piece by piece, one document at a time.

    Documents the fast writer (``kdgen.emit``) does not handle are written by PyYAML; the
    bytes are the same either way.
    """
    open_ended = False
    for document in documents:
        try:
            text, open_ended = emit_document(document)
            yield "---\n" + text
        except Unsupported:
            text = _pyyaml([document], explicit_start=True)
            open_ended = text.endswith("\n...\n")
            yield text.removesuffix("...\n") if open_ended else text
    if open_ended:
        yield "...\n"


def _pyyaml(documents: list[Any], *, explicit_start: bool) -> str:
    """Serialise with PyYAML's dumper, configured as ``kdgen.emit`` writes."""
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
