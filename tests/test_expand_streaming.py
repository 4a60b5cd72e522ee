"""kdgen.expand: the per-KD output estimate, and objects built lazily in output order.

Issue 13: bound amplification per KD before building (``limits.MAX_KD_OUTPUT_BYTES`` from
``bounds.party_output_bytes``), and stream the objects so memory does not grow with them.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from kdgen import expand as expand_module
from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.model import Options, Profile
from kdgen.render import sort_manifests
from kdgen.yamlio import dump_document, dump_documents
from tests.hostile.corpus import IMAGE, containers, kds, ports

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from generate import kd_stream  # type: ignore[import-not-found]

SHAPES = {
    "two-party seed KDs": (kd_stream(20), IMAGE),
    "8 parties, 246 Domain ports": (kds(2, 8), ports(246, "Domain")),
    "100 parties, 4 containers": (kds(1, 100), containers(4)),
    "100 parties of the seed": (kds(1, 100), IMAGE),
}


def _estimates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record what ``_Builder.check`` estimates for each KD."""
    found: list[int] = []
    check = expand_module._Builder.check

    def recording(self: object, *args: object) -> object:
        keys, size, define = check(self, *args)  # type: ignore[arg-type]
        found.append(size)
        return keys, size, define

    monkeypatch.setattr(expand_module._Builder, "check", recording)
    return found


@pytest.mark.parametrize("profile", list(Profile))
@pytest.mark.parametrize("shape", SHAPES)
def test_the_estimate_is_at_least_the_written_bytes_and_at_most_twice(
    shape: str, profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    kd_text, image = SHAPES[shape]
    estimates = _estimates(monkeypatch)
    sources = [Source("kd.yaml", kd_text), Source("image.yaml", image)]
    expansion = expand(parse_sources(sources), Options(profile=profile, include_sources=False))
    written = len(dump_documents(expansion.manifests).encode("utf-8"))
    assert written <= sum(estimates) <= 2 * written


def test_objects_are_built_in_output_order_one_at_a_time() -> None:
    sources = [Source("kds.yaml", kd_stream(60)), Source("image.yaml", IMAGE)]
    expansion = expand(parse_sources(sources), Options())
    objects = list(expansion.iter_objects())
    assert objects == sort_manifests(objects)
    assert len(objects) == expansion.count == 60 * 10 + 60 + 1
    assert expansion.objects == tuple(objects)
    assert dump_documents(expansion.iter_objects()) == dump_documents(objects)


def _peak_while_streaming(count: int) -> int:
    """Peak bytes allocated while writing the stream of ``count`` KDs, beyond ``expand``'s."""
    sources = [Source("kds.yaml", kd_stream(count)), Source("image.yaml", IMAGE)]
    expansion = expand(parse_sources(sources), Options(include_sources=False))
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        written = sum(len(dump_document(obj)) for obj in expansion.iter_objects())
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert written > count * 10_000
    return peak


def test_streaming_memory_does_not_grow_with_the_objects() -> None:
    # Held objects would cost about 25 KB per KD (10 MB at 400 KDs); one at a time, the
    # peak is that of the largest object, whatever the count. The first run fills the
    # writer's bounded cache of short strings (kdgen.emit) with every name of both runs.
    _peak_while_streaming(400)
    small, large = _peak_while_streaming(100), _peak_while_streaming(400)
    assert large < small + 256 * 1024, (small, large)
