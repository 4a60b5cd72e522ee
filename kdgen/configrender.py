r"""Render AppImage config templates as Kuscia's agent would, for the ``plain`` profile.

Why this exists: on a Kuscia cluster the controller ships ``configTemplates`` raw and the
agent renders them when the pod starts (spec §7). Plain Kubernetes has no agent, so kdgen
renders them itself and puts the result in the ``-configtemplate`` ConfigMap (spec §15 row 6).

What it must not do: read files, the clock or the cluster; import click or kubernetes; hand
template text to any template engine; ``eval`` anything. It is pure: templates and values in,
rendered texts and warnings (or a ``ValidationError`` with every problem) out.

It ports the agent's ``renderConfig`` and ``buildStructMap``
(``pkg/agent/middleware/plugins/hook/configrender/config_render.go``) and ``QueryByFields``
(``pkg/utils/common/template.go``). Supported syntax, the subset Kuscia's own AppImages use
(``scripts/templates/*.yaml``, ``docs/tutorial/config_render.md``):

- ``{{.KEY}}``, also ``{{ .KEY }}`` with spaces, tabs or line breaks inside the braces: the
  value escaped like Go ``strconv.Quote`` with every leading and trailing ``"`` trimmed, see
  ``go_quote_trimmed``.
- ``{{{.PATH}}}``: Kuscia's ``kuscia`` helper. PATH is walked through values that parse as a
  JSON object or array with ``name``, ``name[N]``, ``name[k=v]`` and ``name[.A.B]``; a string
  result is written raw, anything else as Go ``json.Marshal`` output.

Everything else is literal text, ``{%``, ``{#`` and other Jinja2 syntax included: rendering
joins the tokens (text as written, each ``{{.KEY}}`` quoted, each query's result) and runs no
template engine, so nothing in the text or the values is ever interpreted. Any other
``{{`` (``{{if}}``, pipelines, ``{{- .X}}``, comments, ``{{ foo }}``), and a PATH holding
``"``, ``\`` or a line break, is reported as an unsupported construct: Go would either run
it or fail on it, and kdgen does neither.

Kuscia's quirks are kept: a value ending in ``"`` renders with a lone trailing backslash;
``name[-len]`` finds nothing; dots inside ``[...]`` become ``#``, so ``[k=a.b]`` never
matches; a null element met by ``[k=v]`` before its match gives nothing; a value that is JSON
``null`` makes every ``{{{.PATH}}}`` fail (reported here as a problem).

A key missing from ``values`` renders ``""``, as the agent's ``missingkey=zero`` does (and as
its config manager leaves a key it does not hold), with one warning per template and key, so
the silent empty value the agent would produce is at least named.

Deliberate differences from the agent, all of which turn a silent wrong render into an error:

- A ``{{{.PATH}}}`` whose keys are all defined but which finds nothing is an error; the agent
  renders ``""``. A defined key means the value exists, so a path that misses it is a typo in
  the AppImage, not a value left for the config manager.
- Every problem of every template is collected before raising; the agent stops at the first.
- ``values`` is looked up exactly as given. The agent uppercases env names itself and asks its
  config manager only for keys its pre-scan found (``{{.KEY`` without a space, or the first
  segment of a ``{{{.PATH}}}``); kdgen cannot tell config-manager values from env values, so a
  value only the config manager holds renders here even where the agent would not fetch it.

The escaping is Go's ``strconv.Quote``, in ``kdgen.gostrconv``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from kdgen import jsontext
from kdgen.errors import Problem, ValidationError
from kdgen.gostrconv import go_quote_trimmed

__all__ = ["go_quote_trimmed", "render_config_templates"]

# --- Go encoding/json, for the kuscia helper ------------------------------------------------


class _NotStructure(ValueError):
    """The value does not parse as Go's ``json.Unmarshal`` would accept it."""


def _go_float(text: str) -> float:
    # Go decodes every JSON number into a float64 and rejects one that overflows it.
    number = float(text)
    if math.isinf(number):
        raise _NotStructure(text)
    return number


def _reject_constant(text: str) -> float:
    raise _NotStructure(text)  # NaN and Infinity are not JSON to Go


def _go_json_decode(text: str) -> Any:
    """Parse ``text`` as Go's ``json.Unmarshal`` into ``interface{}``; raise ``ValueError``."""
    value = jsontext.loads(
        text, parse_float=_go_float, parse_int=_go_float, parse_constant=_reject_constant
    )
    return _without_surrogates(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    # Go decodes an unpaired \uD800-style escape to U+FFFD; Python keeps the lone surrogate.
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def _go_json(value: Any) -> str:
    """Encode a decoded value as Go's ``json.Marshal``: compact, sorted keys, HTML-safe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_json_number(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    items = (f"{_go_json_string(k)}:{_go_json(value[k])}" for k in sorted(value))
    return "{" + ",".join(items) + "}"


_HTML_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_json_string(text: str) -> str:
    # Python and Go agree on \" \\ \b \f \n \r \t and \u00xx; Go also escapes these five.
    return json.dumps(text, ensure_ascii=False).translate(_HTML_SAFE)


def _go_json_number(number: float) -> str:
    # Go's floatEncoder: shortest digits, plain notation unless < 1e-6 or >= 1e21.
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    from decimal import Decimal  # rare (a JSON number inside a {{{.PATH}}} value); 9 ms to import

    shortest = Decimal(repr(number)).normalize()
    if 1e-6 <= abs(number) < 1e21:
        return format(shortest, "f")
    sign, digits, _ = shortest.as_tuple()
    mantissa = "".join(map(str, digits))
    if len(mantissa) > 1:
        mantissa = f"{mantissa[0]}.{mantissa[1:]}"
    return f"{'-' if sign else ''}{mantissa}e{shortest.adjusted():+d}"


# --- the kuscia helper: Kuscia's QueryByFields ----------------------------------------------


class _Panic(Exception):
    """A Go runtime panic in ``QueryByFields``, which it recovers as "nothing"."""


_SEGMENT_WITH_SELECTOR = re.compile(r"(.+)\[(.+)\]")
_GO_ATOI = re.compile(r"[+-]?[0-9]+")


def _query(root: Mapping[str, Any], path: str) -> Any:
    """Walk ``path`` through ``root`` like Kuscia's ``QueryByFields``; ``None`` is nothing."""
    try:
        return _find(path, root, root)
    except _Panic:
        return None


def _find(path: str, value: Any, root: Mapping[str, Any]) -> Any:
    # findValue: split on "." (a "[.A.B]" arrives as "[#A#B]"), skip empty segments.
    for segment in path.split("."):
        if value is None:
            return None
        if not segment:
            continue
        if "[" not in segment:
            value = _by_name(value, segment)
            continue
        match = _SEGMENT_WITH_SELECTOR.fullmatch(segment)
        if match is None:
            return None
        items = _by_name(value, match[1])
        if items is None:
            return None
        value = _select(items, match[2], root)
    return value


def _select(items: Any, selector: str, root: Mapping[str, Any]) -> Any:
    if "=" in selector:
        key, _, wanted = selector.partition("=")
        return _by_filter(items, key, wanted)
    if "#" in selector:
        # The index is another path from the root, formatted with %v and parsed by Atoi.
        computed = _find(selector.replace("#", "."), root, root)
        return _by_index(items, _go_index(computed))
    return _by_index(items, _go_atoi(selector))


def _by_name(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _by_index(items: Any, index: int | None) -> Any:
    # byIdx accepts -(len-1) .. len-1: unlike Python, -len itself is rejected.
    if not isinstance(items, list) or index is None:
        return None
    size = len(items)
    if index >= size or index <= -size:
        return None
    return items[(index + size) % size]


def _by_filter(items: Any, key: str, wanted: str) -> Any:
    # byFilter: the first map whose field stringifies to ``wanted``. A null element met
    # before the match makes Go's reflect panic, and the whole query gives nothing.
    if not isinstance(items, list):
        return None
    for item in items:
        if item is None:
            raise _Panic
        field = item.get(key) if isinstance(item, dict) else None
        if field is not None and _go_to_string(field) == wanted:
            return item
    return None


def _go_to_string(value: Any) -> str:
    return value if isinstance(value, str) else _go_json(value)


def _go_index(value: Any) -> int | None:
    """Return ``strconv.Atoi(fmt.Sprintf("%v", value))`` for a decoded JSON value."""
    if isinstance(value, str):
        return _go_atoi(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return int(value)  # %v prints 1e+06 from there on, and a "." for fractions
    return None


def _go_atoi(text: str) -> int | None:
    if _GO_ATOI.fullmatch(text) is None:
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _structures(values: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Return Kuscia's ``buildStructMap`` of ``values`` and the keys whose value is JSON null.

    A value that parses as a JSON object or array becomes that structure; any other value
    stays the raw string.
    """
    root: dict[str, Any] = {}
    null_keys = []
    for key, text in values.items():
        root[key] = text
        try:
            parsed = _go_json_decode(text)
        except ValueError:
            continue
        if parsed is None:
            null_keys.append(key)
        elif isinstance(parsed, dict | list):
            root[key] = parsed
    return root, null_keys


# --- tokens ---------------------------------------------------------------------------------
# NamedTuples, not dataclasses: a frozen dataclass costs about 2 ms of start-up to create
# (Python 3.11 compiles each generated method), and tokens are only told apart by isinstance.


class _Text(NamedTuple):
    text: str


class _Key(NamedTuple):
    key: str


class _Query(NamedTuple):
    path: str
    """After Kuscia's rewrite: every "." inside "[...]" is a "#"."""
    source: str


_Token = _Text | _Key | _Query


class _Unsupported(NamedTuple):
    source: str
    why: str


# renderConfig's pre-scan: 2 or 3 "{", ".", a path without braces, 2 or 3 "}". Only the
# matches that open with three braces become kuscia calls; Go parses the rest as usual.
_PRESCAN = re.compile(r"\{\{?\{\.([^{}]+)\}\}?\}")
_BRACKETED = re.compile(r"\[(.*?)\]")
# text/template's field action, with Go's four whitespace characters allowed inside.
_FIELD_ACTION = re.compile(r"\{\{[ \t\r\n]*\.(\w+)[ \t\r\n]*\}\}")
_FIELD_CHAIN = re.compile(r"\{\{[ \t\r\n]*\.\w+[.\[]")
_SNIPPET_MAX = 60


def _tokenize(text: str) -> tuple[list[_Token], list[_Unsupported]]:
    """Split a template into literal text, ``{{.KEY}}`` and ``{{{.PATH}}}`` tokens."""
    tokens: list[_Token] = []
    unsupported: list[_Unsupported] = []
    done = 0
    for match in _PRESCAN.finditer(text):
        if not match.group().startswith("{{{"):
            continue
        clean_tail = _scan_go_text(text, done, match.start(), tokens, unsupported)
        if clean_tail and match.start() > done and text[match.start() - 1] == "{":
            # Go would read "{" + "{{kuscia ...}}" as an action starting one brace early.
            source = text[match.start() - 1 : match.end()]
            unsupported.append(_Unsupported(source, "Go reads a '{' before {{{ as an action"))
        if any(char in match[1] for char in '"\\\n'):
            # Kuscia puts the path in a Go string literal, which these break or rewrite.
            why = "a {{{.PATH}}} path cannot contain '\"', '\\' or a line break"
            unsupported.append(_Unsupported(match.group(), why))
        else:
            hashed = _BRACKETED.sub(lambda m: m.group().replace(".", "#"), match[1])
            tokens.append(_Query(hashed, match.group()))
        done = match.end()
    _scan_go_text(text, done, len(text), tokens, unsupported)
    return tokens, unsupported


def _scan_go_text(
    text: str, start: int, end: int, tokens: list[_Token], unsupported: list[_Unsupported]
) -> bool:
    """Tokenize Go-template text; return False if it ends inside an unsupported action."""
    pos = start
    while (opening := text.find("{{", pos, end)) != -1:
        if opening > pos:
            tokens.append(_Text(text[pos:opening]))
        action = _FIELD_ACTION.match(text, opening, end)
        if action is not None and _is_go_identifier(action[1]):
            tokens.append(_Key(action[1]))
            pos = action.end()
            continue
        closing = text.find("}}", opening + 2, end)
        pos = end if closing == -1 else closing + 2
        unsupported.append(_unsupported_action(text[opening:pos]))
        if pos == end:
            return False
    if pos < end:
        tokens.append(_Text(text[pos:end]))
    return True


def _is_go_identifier(name: str) -> bool:
    # text/template's field names: a letter or "_", then letters, decimal digits or "_".
    return not name[0].isdecimal() and all(c == "_" or c.isalpha() or c.isdecimal() for c in name)


def _unsupported_action(source: str) -> _Unsupported:
    if len(source) > _SNIPPET_MAX:
        source = source[:_SNIPPET_MAX] + "..."
    if _FIELD_CHAIN.match(source):
        return _Unsupported(source, "use {{{.KEY.field}}} to read inside a JSON value")
    return _Unsupported(source, "")


# --- checks ---------------------------------------------------------------------------------


def _root_keys(path: str) -> list[str]:
    """Return the data keys a (rewritten) path reads: its head and any "[#A#B]" index heads."""
    keys: list[str] = []
    head_seen = False
    for segment in path.split("."):
        if not segment:
            continue
        match = _SEGMENT_WITH_SELECTOR.fullmatch(segment)
        if not head_seen and (match or "[" not in segment):
            keys.append(match[1] if match else segment)
        head_seen = True
        if match and "=" not in match[2] and "#" in match[2]:
            keys.extend(_root_keys(match[2].replace("#", ".")))
    return keys


def _missing_keys(tokens: Sequence[_Token], values: Mapping[str, str]) -> list[str]:
    missing: list[str] = []
    for token in tokens:
        if isinstance(token, _Key):
            keys = [token.key]
        elif isinstance(token, _Query):
            keys = _root_keys(token.path)
        else:
            continue
        missing.extend(k for k in keys if k not in values and k not in missing)
    return missing


def _problem(name: str, message: str) -> Problem:
    return Problem(f'template "{name}": {message}', field=f"spec.configTemplates[{name}]")


def _missing_key_problem(name: str, key: str, values: Mapping[str, str]) -> Problem:
    hint = "set it in the inventory's spec.templateValues"
    if key.upper() != key and key.upper() in values:
        hint += f'; env names are uppercase, did you mean "{key.upper()}"?'
    message = f'key "{key}" is not defined, rendered as "" as the Kuscia agent does ({hint})'
    return Problem(
        f'template "{name}": {message}',
        field=f"spec.configTemplates[{name}]",
        severity="warning",
    )


def _unsupported_problem(name: str, found: _Unsupported) -> Problem:
    shown = json.dumps(found.source, ensure_ascii=False)
    message = (
        f"unsupported Go-template construct {shown}: kdgen renders only {{{{.KEY}}}}, "
        "{{ .KEY }} and {{{.PATH}}}"
    )
    return _problem(name, f"{message}; {found.why}" if found.why else message)


# --- rendering ------------------------------------------------------------------------------


def _render(tokens: Sequence[_Token], values: Mapping[str, str], root: Mapping[str, Any]) -> str:
    # Template text is copied as it is; nothing is parsed or evaluated after _tokenize.
    pieces = []
    for token in tokens:
        if isinstance(token, _Text):
            pieces.append(token.text)
        elif isinstance(token, _Key):
            pieces.append(go_quote_trimmed(values.get(token.key, "")))  # missingkey=zero
        else:
            pieces.append(_kuscia_output(_query(root, token.path)))
    return "".join(pieces)


def _kuscia_output(found: Any) -> str:
    # kusciaQueryValue: nothing as "", strings raw, anything else as json.Marshal.
    if found is None:
        return ""
    return found if isinstance(found, str) else _go_json(found)


def _check(
    name: str, text: str, values: Mapping[str, str], root: Mapping[str, Any], nulls: list[str]
) -> tuple[list[_Token], list[Problem]]:
    tokens, unsupported = _tokenize(text)
    problems = [_unsupported_problem(name, found) for found in unsupported]
    problems += [_missing_key_problem(name, key, values) for key in _missing_keys(tokens, values)]
    queries = [token for token in tokens if isinstance(token, _Query)]
    if queries and nulls:
        return tokens, problems + [_null_problem(name, key) for key in nulls]
    for query in queries:
        defined = all(key in values for key in _root_keys(query.path))
        if defined and _query(root, query.path) is None:
            message = f"{query.source} finds no value (the Kuscia agent would render it empty)"
            problems.append(_problem(name, message))
    return tokens, problems


def _null_problem(name: str, key: str) -> Problem:
    return _problem(
        name,
        f'key "{key}" holds JSON null, on which the Kuscia agent fails every {{{{{{.PATH}}}}}} '
        "placeholder (its buildStructMap panics); give it another value",
    )


def render_config_templates(
    templates: Mapping[str, str], values: Mapping[str, str]
) -> tuple[dict[str, str], list[Problem]]:
    r"""Render every config template with ``values``, as Kuscia's agent renders them (spec §7).

    Args:
        templates: file name to template text, the AppImage's ``spec.configTemplates``.
        values: the data map, looked up exactly as given: the caller uppercases env names, as
            the agent's ``mergeDataMap`` does, and adds config-manager values as they are.

    Returns:
        File name to rendered text, in the order of ``templates``; and one warning per missing
        key per template (the key renders ``""``). Problems have ``field``
        ``spec.configTemplates[<file name>]`` and no source or resource: the caller fills
        those in.

    Raises:
        ValidationError: with one ``Problem`` per unsupported construct, path that finds
            nothing, or JSON-null value that breaks ``{{{.PATH}}}``, across all templates
            (and the warnings).

    >>> render_config_templates({"a.conf": 'id={{.SERVING_ID}} port={{{.P.ports[0]}}}'},
    ...                         {"SERVING_ID": 'x"y', "P": '{"ports": [8080]}'})
    ({'a.conf': 'id=x\\"y port=8080'}, [])
    """
    root, nulls = _structures(values)
    checked = {name: _check(name, text, values, root, nulls) for name, text in templates.items()}
    problems = [problem for _, found in checked.values() for problem in found]
    if any(problem.severity == "error" for problem in problems):
        raise ValidationError(problems)
    rendered = {name: _render(tokens, values, root) for name, (tokens, _) in checked.items()}
    return rendered, problems
