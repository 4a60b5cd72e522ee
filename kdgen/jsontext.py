"""Decode JSON held inside an input's strings (annotations, config values), with bounded nesting.

Pure. Python's decoder recurses once per level, so a short string such as ``[[[[...]]]]``
nested a hundred thousand deep ends in ``RecursionError`` rather than a decoding error, and a
merely deep value makes every later walk over it deep too. ``loads`` refuses JSON nested
deeper than ``kdgen.limits.MAX_DEPTH`` before decoding, by a linear scan, with a
``ValueError`` as for any other undecodable text.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from kdgen import limits

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def depth(text: str) -> int:
    """Return how deep ``text``'s arrays and objects nest (outside its strings).

    >>> depth('{"a": [1, {"b": "]]]"}]}')
    3
    """
    brackets = _BRACKETS.findall(_STRINGS.sub("", text))
    steps = (1 if bracket in "[{" else -1 for bracket in brackets)
    return max(itertools.accumulate(steps, initial=0))


def loads(text: str, **options: Any) -> Any:
    """``json.loads`` for text from an input: ``ValueError`` when nested too deep.

    >>> loads("[" * 100 + "]" * 100)
    Traceback (most recent call last):
    ...
    ValueError: JSON nested deeper than 64 levels
    """
    if depth(text) > limits.MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {limits.MAX_DEPTH} levels")
    return json.loads(text, **options)
