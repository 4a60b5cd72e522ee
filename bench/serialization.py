"""Benchmark: ``kdgen generate`` for N KDs beside the serialization floors, in one run.

Run: ``.venv/bin/python bench/serialization.py [N ...] [--out DIR]`` (default N = 100 1000
10000, DIR = bench/results). Needs the ``bench`` extra (yaml-rs, orjson, matplotlib) and, for
the kustomize column, ``$KDGEN_TEST_BIN/kustomize`` (scripts/build-test-cluster).

Per N (the workload of bench/generate.py: two-party KDs over 20 domains, the seed's AppImage):

* kdgen generate as a process, output to /dev/null (wall time, peak RSS from ``wait4``);
* kdgen in-process: parse, expand, build and write the stream object by object, as
  ``generate`` does (``iter_stream`` over ``Expansion.iter_objects``);
* the same objects written by: kdgen's writer alone, PyYAML's C dumper with kdgen's settings
  (the floor kdgen used to sit on), yaml-rs (the fastest YAML emitter installed; Rust) and
  orjson (JSON lines: not reviewable, the lower bound of any serialization);
* ``kustomize build`` of the ``--output-dir`` tree, until one N takes longer than a minute;

and once: ``kdgen --version`` start-up. Writes ``serialization.md`` (table, targets with
pass/fail, machine load) and ``serialization.png`` into DIR, prints the table, and exits 1 when
a measured target fails (``--no-fail`` to only report).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generate import IMAGE, kd_stream
from startup import measure as measure_startup

from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.model import Options
from kdgen.render import iter_stream
from kdgen.yamlio import _pyyaml, dump_documents

REPO = Path(__file__).resolve().parent.parent
KDGEN = Path(sys.executable).parent / "kdgen"
KUSTOMIZE_LIMIT = 60.0
BIG = 10000
"""The "10,000 KDs" row (10,001 documents with the AppImage)."""
COLUMNS = (
    ("process", "kdgen generate (process)"),
    ("in_process", "kdgen in-process"),
    ("kdgen_writer", "kdgen writer alone"),
    ("pyyaml_c", "PyYAML C dumper"),
    ("yaml_rs", "yaml-rs"),
    ("orjson", "orjson (JSON lines)"),
    ("kustomize", "kustomize build of the tree"),
)


@dataclass
class Row:
    count: int
    objects: int = 0
    megabytes: float = 0.0
    seconds: dict[str, float | None] = field(default_factory=dict)
    rss_mib: float = 0.0


def best_of(repeats: int, action: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def run_process(argv: list[str], timeout: float | None = None) -> tuple[float, float]:
    """Return wall seconds and peak RSS (MiB) of one child process, output discarded."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                child.kill()
                os.wait4(child.pid, 0)
                return float("inf"), 0.0
            time.sleep(0.005)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    errors = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {child.returncode}: {errors}")
    return elapsed, usage.ru_maxrss / 1024


def optional(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        return None


def measure(count: int, work: Path, kustomize: Path | None, repeats: int) -> Row:
    row = Row(count)
    inputs = work / f"inputs-{count}"
    inputs.mkdir()
    kds = kd_stream(count)
    (inputs / "kds.yaml").write_text(kds, encoding="utf-8")
    shutil.copy(IMAGE, inputs / "image.yaml")
    sources = [Source("kds.yaml", kds), Source("image.yaml", IMAGE.read_text())]

    runs = [run_process([str(KDGEN), "generate", str(inputs)]) for _ in range(repeats)]
    row.seconds["process"] = min(t for t, _ in runs)
    row.rss_mib = max(rss for _, rss in runs)

    def in_process() -> None:
        for _ in iter_stream(expand(parse_sources(sources), Options()).iter_objects()):
            pass

    row.seconds["in_process"] = best_of(repeats, in_process)
    objects = list(expand(parse_sources(sources), Options()).objects)
    text = dump_documents(objects)
    row.objects, row.megabytes = len(objects), len(text.encode()) / 1e6
    row.seconds["kdgen_writer"] = best_of(repeats, lambda: dump_documents(objects))
    row.seconds["pyyaml_c"] = best_of(1, lambda: _pyyaml(objects, explicit_start=True))
    yaml_rs, orjson = optional("yaml_rs"), optional("orjson")
    row.seconds["yaml_rs"] = (
        best_of(repeats, lambda: "".join(yaml_rs.dumps(o) + "\n" for o in objects))
        if yaml_rs
        else None
    )
    row.seconds["orjson"] = (
        best_of(repeats, lambda: b"\n".join(orjson.dumps(o) for o in objects)) if orjson else None
    )
    row.seconds["kustomize"] = None
    if kustomize is not None:
        tree = work / f"tree-{count}"
        run_process([str(KDGEN), "generate", str(inputs), "--output-dir", str(tree)])
        elapsed, _ = run_process([str(kustomize), "build", str(tree)], timeout=KUSTOMIZE_LIMIT)
        row.seconds["kustomize"] = elapsed
    return row


def startup(repeats: int = 7) -> tuple[float, float]:
    """``kdgen --version`` as a user installs kdgen, and the bare interpreter's start-up."""
    found = measure_startup(repeats)
    return found.version_s, found.python_s


def cell(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return f"> {KUSTOMIZE_LIMIT:.0f}"
    return f"{value:.3f}"


def targets(rows: dict[int, Row], version: float) -> list[tuple[str, str, bool | None]]:
    """Return (target, measured, passed) rows; passed is None when N was not measured."""
    found: list[tuple[str, str, bool | None]] = []
    thousand, big = rows.get(1000), rows.get(BIG)
    if thousand is not None:
        process = thousand.seconds["process"] or 0.0
        emitters = [v for k in ("yaml_rs",) if (v := thousand.seconds.get(k)) is not None]
        fastest = min(emitters) if emitters else None
        floor = thousand.seconds["pyyaml_c"] or 0.0
        if fastest is not None:
            found.append(
                (
                    "1,000 KDs: process <= 2 x fastest emitter (yaml-rs)",
                    f"{process:.3f} s vs 2 x {fastest:.3f} s = {2 * fastest:.3f} s",
                    process <= 2 * fastest,
                )
            )
        found.append(
            (
                "1,000 KDs: process <= 0.5 x PyYAML C floor",
                f"{process:.3f} s vs 0.5 x {floor:.3f} s = {0.5 * floor:.3f} s",
                process <= 0.5 * floor,
            )
        )
    else:
        found.append(("1,000 KDs targets", "not measured", None))
    if thousand is not None and big is not None:
        ratio = (big.seconds["process"] or 0.0) / (thousand.seconds["process"] or 1.0)
        n = f"{big.count:,}"
        found.append((f"time({n}) / time(1,000) <= 11", f"{ratio:.2f}", ratio <= 11))
        found.append((f"peak RSS at {n} <= 300 MB", f"{big.rss_mib:.0f} MiB", big.rss_mib <= 300))
    else:
        found.append(("10,000 KDs targets", "not measured", None))
    found.append(("kdgen --version <= 150 ms", f"{version * 1000:.0f} ms", version <= 0.150))
    return found


def table(rows: dict[int, Row], version: float, load: str, interpreter: float) -> str:
    lines = [
        "# Serialization benchmark",
        "",
        f"Produced by `bench/serialization.py`; machine load before the run: {load}. "
        "Seconds, best of the repeats; each YAML/JSON column writes the objects of that N "
        "that kdgen made.",
        "",
        "| KDs | objects | MB | "
        + " | ".join(title for _, title in COLUMNS)
        + " | kdgen peak RSS (MiB) |",
        "|" + "---:|" * (len(COLUMNS) + 4),
    ]
    for count, row in sorted(rows.items()):
        cells = " | ".join(cell(row.seconds.get(key)) for key, _ in COLUMNS)
        lines.append(
            f"| {count:,} | {row.objects:,} | {row.megabytes:.1f} | {cells} | {row.rss_mib:.0f} |"
        )
    lines += [
        "",
        f"`kdgen --version`: {version * 1000:.0f} ms (best of 7; `pip install .` into a fresh "
        "venv, no extras: bench/startup.py); the bare interpreter (`python -c pass`, the "
        f"machine's yardstick) took {interpreter * 1000:.0f} ms in the same venv.",
        "",
    ]
    lines += ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
    for name, measured, passed in targets(rows, version):
        result = "not measured" if passed is None else ("pass" if passed else "FAIL")
        lines.append(f"| {name} | {measured} | {result} |")
    return "\n".join(lines) + "\n"


def plot(rows: dict[int, Row], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    counts = sorted(rows)
    figure, axes = plt.subplots(figsize=(8, 5))
    for key, title in COLUMNS:
        points = [
            (n, v)
            for n in counts
            if (v := rows[n].seconds.get(key)) is not None and v != float("inf")
        ]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=title)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("KusciaDeployments (two parties each)")
    axes.set_ylabel("seconds")
    axes.set_title("kdgen generate and serialization floors")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", nargs="*", type=int, default=[100, 1000, BIG])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--repeats", type=int, default=3, help="repeats for N <= 1000")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    load = "load average {:.2f}, {:.2f}, {:.2f} on {} cores".format(
        *os.getloadavg(), os.cpu_count()
    )
    test_bin = Path(os.environ.get("KDGEN_TEST_BIN", Path.home() / ".cache/kdgen/test-bin"))
    kustomize: Path | None = test_bin / "kustomize"
    if not kustomize.is_file():
        kustomize = None
    rows: dict[int, Row] = {}
    with tempfile.TemporaryDirectory(prefix="kdgen-bench-") as work:
        for count in sorted(args.counts):
            repeats = args.repeats if count <= 1000 else 1
            rows[count] = measure(count, Path(work), kustomize, repeats)
            if rows[count].seconds["kustomize"] in (None, float("inf")):
                kustomize = None  # a larger N would only take longer
            print(f"measured {count} KDs", file=sys.stderr)
    version, interpreter = startup()
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(rows, version, load, interpreter)
    (args.out / "serialization.md").write_text(text, encoding="utf-8")
    plotted = plot(rows, args.out / "serialization.png")
    print(text, end="")
    if not plotted:
        print("(matplotlib is not installed: no plot written)")
    failed = any(passed is False for _, _, passed in targets(rows, version))
    return 1 if failed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
