"""The JSON Schemas of kdgen's inputs, and the two things the apiserver does with a CRD schema.

A real cluster validates a KusciaDeployment or AppImage against its CRD and fills in the CRD's
defaults (port ``protocol: HTTP``, ``scope: Local``) when the object is stored. kdgen reads
YAML that never went through an apiserver, so it must do both itself: ``apply_defaults`` and
``schema_problems``. The schemas are cut from Kuscia's CRDs (see ``PROVENANCE.md``); the
Inventory schema is kdgen's own. The two Kuscia files are the single source of the CRD
schemas: ``kdgen crds`` renders ``deploy/crds`` from them (``kdgen.crds``), and the KD schema
kdgen validates with is derived from its file by ``without_working_dir``.

This module reads its three packaged JSON files once, at import (``crd_schema`` reads a
Kuscia one again, for ``kdgen crds``), and does no other I/O. The
functions are pure: they never change the schema or the object they are given. Kuscia's
semantic rules (unique parties, known roles, port names) are not schema rules and belong
elsewhere (``kdgen.validate``).
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "APP_IMAGE_SCHEMA",
    "CRD_SCHEMA_FILES",
    "INVENTORY_SCHEMA",
    "KUSCIA_DEPLOYMENT_SCHEMA",
    "apply_defaults",
    "crd_schema",
    "schema_problems",
    "without_working_dir",
]


def _load(name: str) -> dict[str, Any]:
    # pkgutil asks this package's loader for the bytes; importlib.resources would cost
    # start-up about 9 ms of imports (tempfile, shutil) for the same read.
    data = pkgutil.get_data(__name__, name)
    if data is None:  # only a loader without get_data, which no installer produces
        raise RuntimeError(f"kdgen's packaged schema {name} cannot be read")
    text = data.decode("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


CRD_SCHEMA_FILES: Final = {
    "KusciaDeployment": "kusciadeployment.json",
    "AppImage": "appimage.json",
}
"""The packaged ``openAPIV3Schema`` of each Kuscia CRD, by kind: the single source of both."""


def crd_schema(kind: str) -> dict[str, Any]:
    """Return the ``openAPIV3Schema`` of Kuscia's CRD for ``kind``, as a cluster applies it.

    This is the packaged file as it is (``workingDir`` required, as in Kuscia), freshly read:
    the caller owns the result. ``kdgen crds`` renders ``deploy/crds`` from it.

    Raises:
        KeyError: ``kind`` is not a key of ``CRD_SCHEMA_FILES``.
    """
    return _load(CRD_SCHEMA_FILES[kind])


_WORKING_DIR_PATH: Final = ("spec", "parties", "template", "spec", "containers")
"""The KD's ``spec.parties[].template.spec.containers[]``, whose ``workingDir`` kdgen relaxes."""


def without_working_dir(schema: dict[str, Any]) -> dict[str, Any]:
    """Relax a KD CRD schema in place: its party template containers need no ``workingDir``.

    The one place kdgen's KD schema differs from the CRD (PROVENANCE.md, "Different on
    purpose"): Kuscia's CRD requires ``workingDir`` in every container a party template
    overrides (the Go field has no ``omitempty``), yet the seed's reference KD leaves it out.
    kdgen accepts such a KD and warns instead (``kdgen.validate``); the CRD keeps the rule.

    Returns:
        ``schema`` itself, changed.
    """
    node = schema
    for name in _WORKING_DIR_PATH:
        node = node["properties"][name]
        if node.get("type") == "array":
            node = node["items"]
    node["required"] = [field for field in node["required"] if field != "workingDir"]
    return schema


KUSCIA_DEPLOYMENT_SCHEMA: Final[Mapping[str, Any]] = without_working_dir(
    _load(CRD_SCHEMA_FILES["KusciaDeployment"])
)
"""``openAPIV3Schema`` of Kuscia's KusciaDeployment CRD, except containers need no workingDir."""
APP_IMAGE_SCHEMA: Final[Mapping[str, Any]] = _load(CRD_SCHEMA_FILES["AppImage"])
"""``openAPIV3Schema`` of Kuscia's AppImage CRD."""
INVENTORY_SCHEMA: Final = _load("inventory.json")
"""kdgen's Inventory document (``kdgen.kuscia.secretflow/v1alpha1``)."""


def apply_defaults(schema: Mapping[str, Any], obj: Any) -> Any:
    """Return a copy of ``obj`` with the schema's ``default`` values filled in.

    This is structural-schema defaulting as the apiserver does it on store: a property missing
    from an object whose schema gives it a ``default`` gets a copy of that default, and the walk
    goes on through ``properties``, ``items`` and ``additionalProperties`` (into defaulted
    values too). Unlike the apiserver, a property present with a ``null`` value is left alone.
    Fields the schema does not describe are copied unchanged.

    Args:
        schema: a JSON Schema, such as ``APP_IMAGE_SCHEMA``.
        obj: a parsed document; never modified.

    Returns:
        A new object; nothing in it is shared with ``obj``.

    >>> port = {"type": "object", "properties": {"scope": {"type": "string", "default": "Local"}}}
    >>> apply_defaults({"type": "array", "items": port}, [{"name": "a"}, {"scope": None}])
    [{'name': 'a', 'scope': 'Local'}, {'scope': None}]
    """
    if isinstance(obj, Mapping):
        return _default_object(schema, obj)
    if isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [apply_defaults(items, value) for value in obj]
    return copy.deepcopy(obj)


def _default_object(schema: Mapping[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    merged = dict(obj)
    for name, sub in properties.items():
        if name not in merged and isinstance(sub, Mapping) and "default" in sub:
            merged[name] = sub["default"]
    result: dict[str, Any] = {}
    for key, value in merged.items():
        sub = properties.get(key, additional)
        result[key] = (
            apply_defaults(sub, value) if isinstance(sub, Mapping) else copy.deepcopy(value)
        )
    return result


def _is_string(_checker: Any, instance: Any) -> bool:
    # PyYAML turns an unquoted 2023-09-19T08:37:27Z into a datetime; kubectl sends it as the
    # string it was written as, so the apiserver sees a string. Do the same.
    return isinstance(instance, str | datetime.date)


@functools.cache
def _validator_class() -> Any:
    # jsonschema is imported only when a document fails the compiled check below: a valid
    # run, the common case, never pays for it (about 70 ms of start-up).
    from jsonschema import Draft202012Validator, validators

    return validators.extend(
        Draft202012Validator,
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine("string", _is_string),
    )


_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_PATTERN_NAMES = {
    _QUANTITY_PATTERN: "a quantity such as 500m or 1Gi",
    _DNS_LABEL_PATTERN: 'a DNS-1123 label (lower-case letters, digits and "-")',
}
_ARTICLES = {"integer": "an integer", "array": "an array", "object": "an object", "null": "null"}


def schema_problems(schema: Mapping[str, Any], obj: Any) -> list[tuple[str, str]]:
    """List every way ``obj`` breaks ``schema``, as ``(field path, message)`` pairs.

    Field paths are kubectl style: ``spec.parties[1].domainID`` for properties and list items,
    ``spec.configTemplates[serving.conf]`` for map keys, ``""`` for the document itself. A
    missing required field or an unknown field is reported at the object that holds it.
    Apply defaults first if the object is to be judged as the apiserver would store it.

    Args:
        schema: a JSON Schema, such as ``KUSCIA_DEPLOYMENT_SCHEMA``.
        obj: a parsed document; never modified.

    Returns:
        Distinct problems sorted by path, then message; empty when ``obj`` is valid.

    >>> port = {"type": "object", "required": ["name"],
    ...         "properties": {"protocol": {"type": "string", "enum": ["HTTP", "GRPC"]}}}
    >>> for path, message in schema_problems(
    ...     {"type": "array", "items": port}, [{"name": "a"}, {"protocol": "TCP"}]
    ... ):
    ...     print(f"{path}: {message}")
    [1]: required field "name" is missing
    [1].protocol: must be one of "HTTP", "GRPC", got "TCP"
    """
    if _surely_valid(schema)(obj):
        return []
    problems: set[tuple[str, str]] = set()
    for error in _validator(schema).iter_errors(obj):
        path = _field_path(error.absolute_path, error.absolute_schema_path)
        problems.update((path, message) for message in _messages(error))
    return sorted(problems)


_Check = Callable[[Any], bool]
_compiled: dict[int, tuple[Mapping[str, Any], _Check]] = {}
_validators: dict[int, tuple[Mapping[str, Any], Any]] = {}
_ANNOTATIONS = frozenset(
    {
        "default",
        "description",
        "format",  # not asserted: the validator runs without a format checker
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-preserve-unknown-fields",
    }
)


def _surely_valid(schema: Mapping[str, Any]) -> _Check:
    """Return the schema's compiled check (compiled once per schema)."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, _compile(schema))
        _compiled[id(schema)] = entry
    return entry[1]


def _validator(schema: Mapping[str, Any]) -> Any:
    """Return the schema's jsonschema validator (built once per schema, on first need)."""
    entry = _validators.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, _validator_class()(schema))
        _validators[id(schema)] = entry
    return entry[1]


def _compile(schema: Any) -> _Check:
    """Compile ``schema`` into a check that is True only if jsonschema would find no error.

    A fast path for the common, valid document: it covers the keywords kdgen's schemas use,
    with jsonschema's semantics (kdgen's string type included). False means "not sure": the
    caller then runs jsonschema for the real list of problems. An unknown keyword compiles to a
    check that is always False, so the fast path can never hide a problem.
    """
    if not isinstance(schema, Mapping):
        return _never
    checks: list[_Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        compiler = _KEYWORDS.get(keyword)
        if compiler is None:
            return _never
        checks.append(compiler(value, schema))
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda instance: all(check(instance) for check in checks)


def _never(_instance: Any) -> bool:
    return False


def _always(_instance: Any) -> bool:
    return True


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, _Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str | datetime.date),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _type(value: Any, _schema: Mapping[str, Any]) -> _Check:
    names = [value] if isinstance(value, str) else list(value)
    if not all(name in _TYPES for name in names):
        return _never
    tests = [_TYPES[name] for name in names]
    return lambda instance: any(test(instance) for test in tests)


def _properties(value: Any, _schema: Mapping[str, Any]) -> _Check:
    subs = {name: _compile(sub) for name, sub in value.items()}

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        return all(sub(instance[name]) for name, sub in subs.items() if name in instance)

    return check


def _additional(value: Any, schema: Mapping[str, Any]) -> _Check:
    if schema.get("patternProperties"):
        return _never
    known = frozenset(schema.get("properties") or ())
    if value is False:
        return lambda instance: not isinstance(instance, dict) or known.issuperset(instance)
    sub = _compile(value)

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        return all(sub(item) for key, item in instance.items() if key not in known)

    return check


def _required(value: Any, _schema: Mapping[str, Any]) -> _Check:
    names = tuple(value)
    return lambda instance: not isinstance(instance, dict) or all(n in instance for n in names)


def _items(value: Any, _schema: Mapping[str, Any]) -> _Check:
    if not isinstance(value, Mapping):
        return _never
    sub = _compile(value)
    return lambda instance: not isinstance(instance, list) or all(sub(item) for item in instance)


def _same(a: Any, b: Any) -> bool:
    """Equality as jsonschema has it for scalars (``True`` is not ``1``); containers: not sure."""
    scalars = (str, int, float, type(None))
    if not isinstance(a, scalars) or not isinstance(b, scalars):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is b
    return bool(a == b)


def _enum(value: Any, _schema: Mapping[str, Any]) -> _Check:
    options = list(value)
    return lambda instance: any(_same(instance, option) for option in options)


def _const(value: Any, _schema: Mapping[str, Any]) -> _Check:
    return lambda instance: _same(instance, value)


def _string_check(test: Callable[[str], bool]) -> _Check:
    def check(instance: Any) -> bool:
        if isinstance(instance, str):
            return test(instance)
        return not isinstance(instance, datetime.date)  # a date counts as a string: unsure

    return check


def _pattern(value: Any, _schema: Mapping[str, Any]) -> _Check:
    regexp = re.compile(value)
    return _string_check(lambda text: regexp.search(text) is not None)


def _min_length(value: Any, _schema: Mapping[str, Any]) -> _Check:
    return _string_check(lambda text: len(text) >= value)


def _max_length(value: Any, _schema: Mapping[str, Any]) -> _Check:
    return _string_check(lambda text: len(text) <= value)


def _minimum(value: Any, _schema: Mapping[str, Any]) -> _Check:
    return lambda instance: not _is_number(instance) or instance >= value


def _maximum(value: Any, _schema: Mapping[str, Any]) -> _Check:
    return lambda instance: not _is_number(instance) or instance <= value


def _any_of(value: Any, _schema: Mapping[str, Any]) -> _Check:
    subs = [_compile(sub) for sub in value]
    return lambda instance: any(sub(instance) for sub in subs)


_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], _Check]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "minLength": _min_length,
    "maxLength": _max_length,
    "minimum": _minimum,
    "maximum": _maximum,
    "anyOf": _any_of,
}


def _field_path(instance_path: Sequence[Any], schema_path: Sequence[Any]) -> str:
    """Render the instance path, telling property names from map keys by the schema path."""
    steps = iter(instance_path)
    text = ""
    position = 0
    keywords = list(schema_path)[:-1]  # the last one is the failing validator itself
    try:
        while position < len(keywords):
            keyword = keywords[position]
            if keyword == "properties":
                text += f".{next(steps)}"
                position += 2
            elif keyword in ("items", "additionalProperties"):
                text += f"[{next(steps)}]"
                position += 1
            elif keyword in ("patternProperties", "anyOf", "allOf", "oneOf"):
                if keyword == "patternProperties":
                    text += f"[{next(steps)}]"
                position += 2
            else:
                position += 1
    except StopIteration:  # a path the walk does not model: fall back to the plain form
        return _plain_path(instance_path)
    if next(steps, None) is not None:
        return _plain_path(instance_path)
    return text.removeprefix(".")


def _plain_path(instance_path: Sequence[Any]) -> str:
    text = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in instance_path)
    return text.removeprefix(".")


def _messages(error: Any) -> Iterator[str]:
    kind, expected, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = [name for name in expected if name not in instance]
        yield from (f'required field "{name}" is missing' for name in missing)
    elif kind == "additionalProperties":
        yield from (f'unknown field "{key}"' for key in _unknown_keys(error.schema, instance))
    elif kind == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        yield f"must be {_either(types)}, got {_type_name(instance)}"
    elif kind == "anyOf" and all(set(sub) == {"type"} for sub in expected):
        yield f"must be {_either([sub['type'] for sub in expected])}, got {_type_name(instance)}"
    else:
        yield _message(kind, expected, instance)


def _message(kind: str, expected: Any, instance: Any) -> str:
    got = _show(instance)
    if kind == "enum":
        return f"must be one of {', '.join(_show(value) for value in expected)}, got {got}"
    if kind == "const":
        return f"must be {_show(expected)}, got {got}"
    if kind == "pattern" and expected in _PATTERN_NAMES:
        return f"must be {_PATTERN_NAMES[expected]}, got {got}"
    if kind == "pattern":
        return f"must match {_show(expected)}, got {got}"
    if kind == "minimum":
        return f"must be at least {expected}, got {got}"
    if kind == "maximum":
        return f"must be at most {expected}, got {got}"
    if kind == "minLength" and expected == 1:
        return "must not be empty"
    if kind == "minLength":
        return f"must be at least {expected} characters long, got {len(instance)}"
    if kind == "maxLength":
        return f"must be at most {expected} characters long, got {len(instance)}"
    if kind == "anyOf":
        return f"does not match any allowed schema, got {got}"
    return f"does not satisfy {kind} {_show(expected)}, got {got}"


def _unknown_keys(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    known = schema.get("properties") or {}
    patterns = schema.get("patternProperties") or {}
    return [
        key
        for key in instance
        if key not in known and not any(re.search(pattern, key) for pattern in patterns)
    ]


def _either(types: Sequence[str]) -> str:
    return " or ".join(_ARTICLES.get(name, f"a {name}") for name in types)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str | datetime.date):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _show(value: Any) -> str:
    """Quote a scalar as JSON; name the type of anything bigger, to keep messages short."""
    if isinstance(value, Mapping | list):
        return _type_name(value)
    if isinstance(value, datetime.date):
        return json.dumps(value.isoformat())
    return json.dumps(value)
