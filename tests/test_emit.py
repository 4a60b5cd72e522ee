"""The fast YAML writer (kdgen/emit.py) against PyYAML, and read back by Python and Go readers.

Three references:

* today's PyYAML dumper (kdgen's settings before kdgen.emit existed): the fast writer must give
  the same bytes for every golden case and for any object holding no string ``AMBIGUOUS``
  quotes and no U+0085/U+2028/U+2029;
* PyYAML with kdgen's stricter resolver and representer (``yamlio._pyyaml``, the fallback): the
  same bytes for any object at all;
* readers: PyYAML, ruamel (YAML 1.2 and 1.1) and kubectl (Go, sigs.k8s.io/yaml, as
  ``kubectl apply`` reads a manifest) must read back exactly the objects written.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kdgen.emit import AMBIGUOUS, Unsupported, emit_document
from kdgen.errors import KdgenError
from kdgen.expand import expand
from kdgen.load import parse_sources
from kdgen.yamlio import _pyyaml, dump_document, dump_documents
from tests.golden import GOLDEN, case_names, case_options, case_sources
from tests.support.cluster import find_kubectl

TRICKY = [
    *("yes", "Yes", "no", "on", "On", "off", "OFF", "y", "Y", "n", "N", "true", "False"),
    *("null", "Null", "~", "", "<<", "=", "!", "&", "*"),
    *("0123", "08", "09", "0o17", "0O17", "0x1F", "0X1F", "0b101", "0B1", "+_1", "1_000"),
    *("1e3", "1E3", "1e+3", "1.0e3", "-.5", "+.5", ".5", "._5", "1.", "12:30", "190:20:30"),
    *(".inf", "-.Inf", ".NaN", "1.2.3", "1.2", "-1", "+1", "0", "-0"),
    *("2024-01-01", "2024-1-1", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00", "2024-01-01x"),
    *(":x", "x:", "a: b", "a:b", "- x", "-x", "-", "?", "? x", "?x", ":", "#x", "x #y", "x#y"),
    *("---", "...", "--- x", "...x", "[a]", "{a}", "a,b", "'q'", '"q"', "%x", "@x", "`x", "|x"),
    *(" lead", "trail ", " ", "  ", "a  b", "it's", "back\\slash", "tab\there", "\t"),
    *("é", "日本", "\U0001f600", "\x85", "\u2028x", "a\u2029b", "\ufeff", "\x7f", "\x00", "\r"),
    *("a\nb", "a\nb\n", "a\n\n", "\n", "\n\n", "\na", " a\nb", "a\n b", "a \nb", "a\nb "),
    *("a\n\nb\n", "a\r\nb\n", "a\tb\nc", '{"k": "v"}\n', "x: |\n  y\n", "\u00a0x\ny"),
]
"""Strings whose style or quoting differs between readers or writers."""

_CHARS = st.characters(exclude_categories=["Cs"])
_FRAGMENTS = st.text(alphabet="ab yYnN0189.eE+-_:#'\"\n\t\\x|>~", max_size=8)
STRINGS = st.one_of(
    st.sampled_from(TRICKY),
    st.text(_CHARS, max_size=12),
    _FRAGMENTS,
    st.lists(st.sampled_from(TRICKY) | _FRAGMENTS, max_size=4).map("".join),
)
SCALARS = st.one_of(
    STRINGS,
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(STRINGS, inner, max_size=4),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(STRINGS, VALUES, min_size=1, max_size=6)


def _quoted_alike(value: str) -> bool:
    """PyYAML quotes ``value`` wherever kdgen does (it is no string kdgen quotes more)."""
    return not AMBIGUOUS.match(value) and not any(c in value for c in "\x85\u2028\u2029")


_ALIKE = STRINGS.filter(_quoted_alike)
_ALIKE_VALUES = st.recursive(
    st.one_of(_ALIKE, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_ALIKE, inner, max_size=4),
    max_leaves=20,
)
ALIKE_DOCUMENTS = st.dictionaries(_ALIKE, _ALIKE_VALUES, min_size=1, max_size=6)


class _TodaysDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """kdgen's dumper before kdgen.emit: the bytes the golden files were written with."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TodaysDumper.add_representer(str, _represent_str)


def todays_pyyaml(documents: list[Any], *, explicit_start: bool = True) -> str:
    text: str = yaml.dump_all(
        documents,
        Dumper=_TodaysDumper,
        explicit_start=explicit_start,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text


def _fast(document: Any) -> str | None:
    """The fast writer's text for one document, or None when it hands the document to PyYAML."""
    try:
        text, open_ended = emit_document(document)
    except Unsupported:
        return None
    return text + "...\n" if open_ended else text


def _golden_manifests() -> dict[str, list[Any]]:
    cases = {}
    for name in case_names():
        case = GOLDEN / name
        try:
            expansion = expand(parse_sources(case_sources(case)), case_options(case))
        except KdgenError:
            continue
        cases[name] = list(expansion.objects)
    return cases


GOLDEN_MANIFESTS = _golden_manifests()


def test_golden_cases_produce_manifests() -> None:
    assert len(GOLDEN_MANIFESTS) >= 15


@pytest.mark.parametrize("name", sorted(GOLDEN_MANIFESTS))
def test_golden_output_is_todays_pyyaml_byte_for_byte(name: str) -> None:
    manifests = GOLDEN_MANIFESTS[name]
    assert all(_fast(m) is not None for m in manifests), "a golden object fell back to PyYAML"
    assert dump_documents(manifests) == todays_pyyaml(manifests)
    for manifest in manifests:
        assert dump_document(manifest) == todays_pyyaml([manifest], explicit_start=False)
    committed = (GOLDEN / name / "expected.yaml").read_text(encoding="utf-8")
    assert dump_documents(manifests) == committed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(DOCUMENTS, min_size=1, max_size=3))
def test_same_bytes_as_pyyaml_with_kdgen_quoting(documents: list[dict[str, Any]]) -> None:
    assert dump_documents(documents) == _pyyaml(documents, explicit_start=True)
    for document in documents:
        fast = _fast(document)
        if fast is not None:
            assert fast == _pyyaml([document], explicit_start=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALIKE_DOCUMENTS, min_size=1, max_size=3))
def test_same_bytes_as_todays_pyyaml_unless_a_string_is_ambiguous(
    documents: list[dict[str, Any]],
) -> None:
    assert dump_documents(documents) == todays_pyyaml(documents)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(DOCUMENTS, min_size=1, max_size=3))
def test_python_readers_read_back_what_was_written(documents: list[dict[str, Any]]) -> None:
    text = dump_documents(documents)
    assert list(yaml.safe_load_all(text)) == documents
    for version in ((1, 2), (1, 1)):
        reader = YAML(typ="safe", pure=True)
        reader.version = version
        assert list(reader.load_all(io.StringIO(text))) == documents, version


@settings(max_examples=200, deadline=None)
@given(STRINGS)
def test_common_shapes_stay_on_the_fast_path(value: str) -> None:
    """Only keys are ever handed to PyYAML: any string value, list or nested map is written."""
    assert _fast({"k": value, "l": [value, {"m": value}], "n": {"o": [[value]]}}) is not None


def test_unsupported_objects_fall_back_to_pyyaml() -> None:
    import datetime

    for document in (
        {"when": datetime.date(2024, 1, 1)},
        {1: "int key"},
        {"k" * 200: "long key"},
        {"a\nb": "multi-line key"},
        {"t": (1, 2)},
        {},
    ):
        assert _fast(document) is None
        assert dump_documents([document, {"z": 1}]) == _pyyaml(
            [document, {"z": 1}], explicit_start=True
        )


def test_open_ended_last_document_gets_a_document_end_marker() -> None:
    assert dump_documents([{"a": "x\n\n"}]) == "---\na: |+\n  x\n\n...\n"
    assert dump_documents([{"a": "x\n\n"}, {"b": 1}]) == "---\na: |+\n  x\n\n---\nb: 1\n"
    assert dump_document({"a": "x\n\n", "b": "y\n"}) == "a: |+\n  x\n\nb: |\n  y\n"


def _random_corpus(count: int) -> list[str]:
    rng = random.Random(13)
    alphabet = "ab yYnN0189.eE+-_:#'\"\n\\x|~é日"
    corpus = list(TRICKY)
    while len(corpus) < count:
        pieces = [rng.choice(TRICKY) if rng.random() < 0.3 else rng.choice(alphabet)]
        pieces += [rng.choice(alphabet) for _ in range(rng.randrange(6))]
        corpus.append("".join(pieces))
    return corpus


def _kubectl_reads(text: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Objects as kubectl (Go, sigs.k8s.io/yaml) reads a manifest stream, via ``--local``."""
    path = tmp_path / "stream.yaml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [find_kubectl(), "label", "--local", "-f", str(path), "kdgen-probe=1", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    items: list[dict[str, Any]] = []
    position = 0
    while result.stdout[position:].strip():
        item, position = decoder.raw_decode(
            result.stdout, len(result.stdout) - len(result.stdout[position:].lstrip())
        )
        items.append(item)
    for item in items:
        labels = item["metadata"].pop("labels")
        assert labels.pop("kdgen-probe") == "1"
        if labels:
            item["metadata"]["labels"] = labels
    return items


def _configmap(i: int, data: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"o{i}"}, "x": data}


@pytest.mark.tools
def test_kubectl_reads_back_every_tricky_string(tmp_path: Path) -> None:
    objects = [
        _configmap(i, {"as-value": s, s: "as-key", "in-list": [s, {"nested": s}]})
        for i, s in enumerate(_random_corpus(1500))
    ]
    read = _kubectl_reads(dump_documents(objects), tmp_path)
    assert read == objects


@pytest.mark.tools
def test_kubectl_reads_back_every_golden_output(tmp_path: Path) -> None:
    manifests = [m for name in sorted(GOLDEN_MANIFESTS) for m in GOLDEN_MANIFESTS[name]]
    assert _kubectl_reads(dump_documents(manifests), tmp_path) == manifests


@pytest.mark.tools
def test_kubectl_misreads_ambiguous_strings_written_bare(tmp_path: Path) -> None:
    """Why AMBIGUOUS exists: today's PyYAML writes these bare and Go reads non-strings."""
    bare = ["y", "n", "1e3", "08", "0o17", "-.5", "1.0e3"]
    objects = [_configmap(i, {"v": s}) for i, s in enumerate(bare)]
    old = todays_pyyaml(objects)
    assert all(f"v: {s}\n" in old for s in bare)
    read = _kubectl_reads(old, tmp_path)
    assert [o["x"]["v"] for o in read] == [True, False, 1000, 8, 15, -0.5, 1000]
    assert _kubectl_reads(dump_documents(objects), tmp_path) == objects
