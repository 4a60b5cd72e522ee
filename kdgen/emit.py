"""A fast block-style YAML writer for the plain objects kdgen makes.

Pure: objects in, text out. It writes what libyaml's emitter (PyYAML's C dumper) writes for the
same objects with kdgen's settings (block style, keys in insertion order, no line folding, no
aliases, UTF-8 text left as it is, multi-line strings as ``|`` blocks), byte for byte, with
two deliberate differences that make the output safe for every reader of Kubernetes manifests:

* a string that some YAML 1.1 or 1.2 reader would take for a number, a boolean, a null or a
  timestamp (``AMBIGUOUS``: ``y``, ``n``, ``1e3``, ``08``, ``0o17``, ``-.5``, ``2024-1-1`` ...)
  is quoted, although PyYAML's own 1.1 resolver would write it bare;
* a string holding U+0085, U+2028 or U+2029 is double-quoted with escapes: YAML 1.1 reads them
  as line breaks but YAML 1.2 as ordinary characters, so no other style means the same to both.

Only exact ``dict``, ``list``, ``str``, ``int``, ``bool``, ``float`` and ``None`` are handled,
under a non-empty mapping at the top. Anything else (a date, a tuple, a key that is not a
string, a key too long or multi-line for a simple key, an unpaired surrogate) raises
``Unsupported``, and the caller writes that document with PyYAML instead (``kdgen.yamlio``),
whose settings and resolver are the same. Tests compare the two over every golden case and
over generated objects.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import yaml

__all__ = ["AMBIGUOUS", "Unsupported", "emit_document"]


class Unsupported(ValueError):
    """The object holds something this writer does not handle; write it with PyYAML."""


AMBIGUOUS: Final = re.compile(
    r"""^(?:
      [yYnN]
    | (?=[-+0-9.])[-+]?(?:[0-9_]+(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9_]+)?
    | (?=[-+0-9])[-+]?[_0]*0_*[xXoObB][0-9a-fA-F_]+
    | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
    | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt\ \t].*)?
    )$""",
    re.VERBOSE,
)
"""Plain strings some reader resolves to a non-string, beyond PyYAML's own 1.1 resolver.

``y``/``n`` are YAML 1.1 booleans (ruamel in 1.1 mode; Go's yaml.v2, which sigs.k8s.io/yaml
and so kubectl use). Decimal numbers with leading zeros (``08``), exponents without a dot
(``1e3``), signed ``-.5`` and ``0o``/``0X`` prefixes are numbers to YAML 1.2 readers (ruamel,
yaml.v3) or to yaml.v2, which also drops every ``_`` first; ruamel's resolver even takes
``+_`` or ``._`` for numbers (and then fails to read them). Dates with one-digit months are
yaml.v2 and yaml.v3 timestamps.
"""

_PYYAML_PATTERNS: Final = sorted(
    {
        f"(?:{regexp.pattern})"
        for resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values()
        for _tag, regexp in resolvers
    }
)
_FIRST_RESOLVED: Final = re.compile(
    "|".join([*_PYYAML_PATTERNS, f"(?:{AMBIGUOUS.pattern})"]), re.VERBOSE
)
"""Plain strings that do not read back as strings: PyYAML's implicit resolvers and AMBIGUOUS."""

_FLOAT: Final = next(
    regexp
    for resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values()
    for tag, regexp in resolvers
    if tag == "tag:yaml.org,2002:float"
)

# libyaml's IS_PRINTABLE, negated, is a class over most of Unicode: Python compiles such a
# class in several milliseconds, and start-up counts (every Argo CD refresh starts kdgen), so
# the full class is compiled only when a non-ASCII string first needs it.
_ASCII_NEEDS_DOUBLE: Final = re.compile("[^\x20-\x7e]")
_UNICODE_NEEDS_DOUBLE: Final = "[^\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]|[\u2028\u2029]"
_compiled: dict[str, re.Pattern[str]] = {}


def _pattern(source: str) -> re.Pattern[str]:
    found = _compiled.get(source)
    if found is None:
        found = _compiled[source] = re.compile(source)
    return found


def _needs_double(text: str) -> bool:
    """Tell whether only a double-quoted scalar can carry ``text`` (tab, breaks, control ...)."""
    if text.isascii():
        return _ASCII_NEEDS_DOUBLE.search(text) is not None
    return _pattern(_UNICODE_NEEDS_DOUBLE).search(text) is not None


_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_INDICATORS: Final = frozenset("#,[]{}&*!|>'\"%@`")
_ESCAPES: Final = {
    "\0": "\\0",
    "\x07": "\\a",
    "\x08": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\x0b": "\\v",
    "\x0c": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
    "\x85": "\\N",
    "\xa0": "\\_",
    "\u2028": "\\L",
    "\u2029": "\\P",
}
_DOUBLE_ESCAPED: Final = '["\\\\\u2028\u2029]|[^\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]'
_SIMPLE_KEY_MAX: Final = 128

_CACHE_MAX: Final = 1 << 16
_inline: dict[str, str] = {}
"""Short string -> how it is written after ``key: `` or ``- `` (single-line styles only)."""
_keys: dict[str, str] = {}
"""Mapping key -> ``key:`` as written."""


def _double_quoted(value: str) -> str:
    if _SURROGATE.search(value):
        raise Unsupported("an unpaired surrogate cannot be encoded as UTF-8")
    return '"' + _pattern(_DOUBLE_ESCAPED).sub(_escape, value) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _single_line(value: str) -> str:
    """Return a string without line breaks as libyaml writes it in block context."""
    if not value:
        return "''"
    if _needs_double(value):
        return _double_quoted(value)
    first = value[0]
    if (
        first == " "
        or value[-1] == " "
        or first in _INDICATORS
        or (first in "-?:" and (len(value) == 1 or value[1] == " "))
        or value[-1] == ":"
        or ": " in value
        or " #" in value
        or value.startswith(("---", "..."))
        or _FIRST_RESOLVED.match(value)
    ):
        return "'" + value.replace("'", "''") + "'"
    return value


def _key(key: Any) -> str:
    if type(key) is not str:
        raise Unsupported(f"a mapping key of type {type(key).__name__}")
    if "\n" in key or len(key.encode("utf-8")) > _SIMPLE_KEY_MAX or _needs_double(key):
        # Multi-line or long keys are complex keys; escaped ones are rare: leave them to PyYAML.
        raise Unsupported("a key that is not a simple plain or single-quoted scalar")
    text = _single_line(key) + ":"
    if len(_keys) >= _CACHE_MAX:
        _keys.clear()
    _keys[key] = text
    return text


class _Writer:
    """Writes one document; ``open_ended`` follows libyaml's state after a ``|+`` block."""

    __slots__ = ("open_ended", "out")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.open_ended = False

    def scalar(self, value: Any, indent: str) -> str:
        """Return ``value`` as written after ``key: `` or ``- ``, ending with a line break."""
        kind = type(value)
        if kind is str:
            text = _inline.get(value)
            if text is not None:
                return text
            if "\n" in value and not _needs_double(value.replace("\n", "")):
                return self.literal(value, indent)
            text = _single_line(value) + "\n"
            if len(value) <= 256:
                if len(_inline) >= _CACHE_MAX:
                    _inline.clear()
                _inline[value] = text
            return text
        if kind is bool:
            return "true\n" if value else "false\n"
        if kind is int:
            return f"{value}\n"
        if value is None:
            return "null\n"
        if kind is float:
            return _float(value) + "\n"
        raise Unsupported(f"a value of type {kind.__name__}")

    def literal(self, value: str, indent: str) -> str:
        """Return a multi-line string as a ``|`` block, or double-quoted where libyaml must."""
        if value[-1] == " " or " \n" in value:
            return _double_quoted(value) + "\n"
        header = "|2" if value[0] in " \n" else "|"
        if value[-1] != "\n":
            header += "-"
            self.open_ended = False
        elif len(value) == 1 or value[-2] == "\n":
            header += "+"
            self.open_ended = True
        else:
            self.open_ended = False
        lines = value.split("\n")
        if value[-1] == "\n":
            lines.pop()
        inner = indent + "  "
        return header + "\n" + "".join(f"{inner}{line}\n" if line else "\n" for line in lines)

    def mapping(self, mapping: dict[str, Any], lead: str, indent: str) -> None:
        """Write a non-empty mapping: its first key after ``lead``, the others at ``indent``."""
        append = self.out.append
        key_text = _keys.get
        inline = _inline.get
        inner = indent + "  "
        for key, value in mapping.items():
            text = key_text(key)
            if text is None or type(key) is not str:
                text = _key(key)
            kind = type(value)
            if kind is str:
                line = inline(value)
                append(f"{lead}{text} {line or self.scalar(value, indent)}")
            elif kind is dict:
                if value:
                    append(f"{lead}{text}\n")
                    self.mapping(value, inner, inner)
                else:
                    append(f"{lead}{text} {{}}\n")
            elif kind is list:
                if value:
                    append(f"{lead}{text}\n")
                    self.sequence(value, indent, indent)
                else:
                    append(f"{lead}{text} []\n")
            elif kind is int:
                append(f"{lead}{text} {value}\n")
            else:
                append(f"{lead}{text} {self.scalar(value, indent)}")
            lead = indent

    def sequence(self, items: list[Any], lead: str, indent: str) -> None:
        """Write a non-empty sequence: its first ``- `` after ``lead``, the others at ``indent``."""
        append = self.out.append
        inline = _inline.get
        inner = indent + "  "
        for item in items:
            kind = type(item)
            if kind is str:
                line = inline(item)
                append(f"{lead}- {line or self.scalar(item, indent)}")
            elif kind is dict:
                if item:
                    self.mapping(item, f"{lead}- ", inner)
                else:
                    append(f"{lead}- {{}}\n")
            elif kind is list:
                if item:
                    self.sequence(item, f"{lead}- ", inner)
                else:
                    append(f"{lead}- []\n")
            else:
                append(f"{lead}- {self.scalar(item, indent)}")
            lead = indent

    def document(self, document: Any) -> tuple[str, bool]:
        """Return one document (a non-empty mapping) and whether it ends open."""
        if type(document) is not dict or not document:
            raise Unsupported("a document that is not a non-empty mapping")
        self.open_ended = False
        self.out = []
        self.mapping(document, "", "")
        return "".join(self.out), self.open_ended


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    if not _FLOAT.match(text):
        raise Unsupported(f"a float PyYAML would tag explicitly: {text}")
    return text


def emit_document(document: Any) -> tuple[str, bool]:
    r"""Return one mapping as block-style YAML (no ``---``), and whether it ends open.

    A document ends open when its last block scalar keeps trailing line breaks (``|+``); as
    libyaml does, a stream whose last document ends open is closed with ``...``.

    Raises:
        Unsupported: the document holds something only PyYAML writes.

    >>> text, open_ended = emit_document({"b": 1, "a": "x\ny\n", "c": ["on", None]})
    >>> print(text, end="")
    b: 1
    a: |
      x
      y
    c:
    - 'on'
    - null
    >>> open_ended
    False
    """
    return _Writer().document(document)
