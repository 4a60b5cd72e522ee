"""Go's ``strconv.Quote`` (and ``fmt``'s ``%q``), for text that must match Kuscia's byte for byte.

Pure: text in, text out. Printability follows Go 1.24's Unicode 15.0 tables on Python 3.11
(see ``_UNICODE_15_PRINTABLE``); a Python with newer Unicode tables would keep characters added
after 15.0 that Go escapes.
"""

from __future__ import annotations

import re
from bisect import bisect_right

__all__ = ["go_quote", "go_quote_trimmed"]

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}

# Go's IsPrint and Python's isprintable share a definition (letters, marks, numbers,
# punctuation, symbols and ASCII space) but not a Unicode version. Go 1.24, which builds
# Kuscia, has Unicode 15.0; Python 3.11 has 14.0. These are the 15.0 additions Go prints
# as-is and Python 3.11 calls unprintable (checked code point by code point against Go).
_UNICODE_15_PRINTABLE = (
    (0x0CF3, 0x0CF3), (0x0ECE, 0x0ECE), (0x10EFD, 0x10EFF), (0x1123F, 0x11241),
    (0x11B00, 0x11B09), (0x11F00, 0x11F10), (0x11F12, 0x11F3A), (0x11F3E, 0x11F59),
    (0x1342F, 0x1342F), (0x13440, 0x13455), (0x1B132, 0x1B132), (0x1B155, 0x1B155),
    (0x1D2C0, 0x1D2D3), (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E08F, 0x1E08F),
    (0x1E4D0, 0x1E4F9), (0x1F6DC, 0x1F6DC), (0x1F774, 0x1F776), (0x1F77B, 0x1F77F),
    (0x1F7D9, 0x1F7D9), (0x1FA75, 0x1FA77), (0x1FA87, 0x1FA88), (0x1FAAD, 0x1FAAF),
    (0x1FABB, 0x1FABD), (0x1FABF, 0x1FABF), (0x1FACE, 0x1FACF), (0x1FADA, 0x1FADB),
    (0x1FAE8, 0x1FAE8), (0x1FAF7, 0x1FAF8), (0x2B739, 0x2B739), (0x31350, 0x323AF),
)  # fmt: skip
_UNICODE_15_STARTS = tuple(lo for lo, _ in _UNICODE_15_PRINTABLE)

# Quote leaves printable ASCII other than '"' and '\' alone; everything else is checked.
_MAY_NEED_ESCAPE = re.compile(r'["\\]|[^\x20-\x7e]')


def go_quote_trimmed(value: str) -> str:
    r"""Escape ``value`` as Kuscia does for ``{{.KEY}}``: ``strings.Trim(strconv.Quote(v), "\"")``.

    The result is a JSON-like escaped string without its quotes, so ``"{{.INPUT_CONFIG}}"`` in
    a JSON template stays valid for ordinary values. Trim removes *every* leading and trailing
    quote, so a value ending in ``"`` loses its escaped quote and ends in a lone backslash:
    Kuscia's bug, reproduced on purpose.

    Args:
        value: the raw data value.

    Returns:
        The escaped text, as the agent writes it into the rendered file.

    >>> print(go_quote_trimmed('{"port": 8080}'))
    {\"port\": 8080}
    >>> print(go_quote_trimmed('a\\b\n\tc\x01\x7f'))
    a\\b\n\tc\x01\x7f
    >>> print(go_quote_trimmed('é\xa0\U0001f600\U000e0001'))
    é\u00a0😀\U000e0001
    >>> print(go_quote_trimmed('hello"'))
    hello\
    >>> print(go_quote_trimmed('"hello'))
    \"hello
    """
    return _MAY_NEED_ESCAPE.sub(_quote_char, value).strip('"')


def go_quote(value: str) -> str:
    r"""Return ``value`` as Go's ``strconv.Quote`` (and ``%q``) writes it, quotes included.

    >>> print(go_quote('abc\n'))
    "abc\n"
    >>> print(go_quote('say "hi"'))
    "say \"hi\""
    """
    return '"' + _MAY_NEED_ESCAPE.sub(_quote_char, value) + '"'


def _quote_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    if _go_is_print(char):
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate is invalid UTF-8 to Go, which escapes each byte.
        return "".join(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogatepass"))
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _go_is_print(char: str) -> bool:
    if char.isprintable():
        return True
    code = ord(char)
    i = bisect_right(_UNICODE_15_STARTS, code) - 1
    return i >= 0 and code <= _UNICODE_15_PRINTABLE[i][1]
