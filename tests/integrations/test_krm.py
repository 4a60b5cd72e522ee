"""The KRM function's protocol, in-process: function configs, items, results, pass-through."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdgen.adapters import krm
from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.model import Options, PortMode, Profile
from kdgen.render import render_stream
from tests.integrations.paths import EXAMPLE, IMAGE_FILE, KD_FILE


@pytest.fixture
def in_example() -> Iterator[Path]:
    """Run with the example folder as the working directory, as kustomize would."""
    before = Path.cwd()
    os.chdir(EXAMPLE)
    try:
        yield EXAMPLE
    finally:
        os.chdir(before)


def documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((EXAMPLE / name).read_text()))


def cli_objects(options: Options) -> tuple[dict[str, Any], ...]:
    """What ``kdgen generate`` makes of the example with ``options``."""
    sources = [Source(n, (EXAMPLE / n).read_text()) for n in (IMAGE_FILE, KD_FILE)]
    return expand(parse_sources(sources), options).manifests


def call(function_config: Any, items: list[Any] | None = None) -> tuple[int, dict[str, Any], str]:
    body = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items or []}
    if function_config is not None:
        body["functionConfig"] = function_config
    outcome = krm.process(yaml.safe_dump(body))
    return outcome.exit_code, yaml.safe_load(outcome.stdout), outcome.stderr


def generator(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kdgen.kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeploymentGenerator",
        "metadata": {"name": "x"},
        "spec": spec,
    }


def generated(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The items made from a KD, without the one annotation the function adds for kpt."""
    out = []
    for item in body["items"]:
        if item["metadata"].get("labels", {}).get("kuscia.secretflow/controller"):
            annotations = dict(item["metadata"]["annotations"])
            annotations.pop(krm.PATH_ANNOTATION)
            out.append({**item, "metadata": {**item["metadata"], "annotations": annotations}})
    return out


@pytest.mark.usefixtures("in_example")
@pytest.mark.parametrize(
    ("function_config", "items", "options"),
    [
        pytest.param(generator(files=["."]), [], Options(), id="generator-files"),
        pytest.param(
            generator(profile="plain", inline=documents(IMAGE_FILE) + documents(KD_FILE)),
            [],
            Options(profile=Profile.PLAIN),
            id="generator-inline",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {"ports": "allocated"}},
            documents(KD_FILE) + documents(IMAGE_FILE),
            Options(ports=PortMode.ALLOCATED),
            id="configmap-with-items",
        ),
        pytest.param(None, documents(KD_FILE) + documents(IMAGE_FILE), Options(), id="no-config"),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": {"files": f"{KD_FILE}, {IMAGE_FILE}"},
            },
            [],
            Options(),
            id="configmap-files",
        ),
    ],
)
def test_inputs_from_each_place_give_the_cli_objects(
    function_config: Any, items: list[Any], options: Options
) -> None:
    code, body, stderr = call(function_config, items)
    assert (code, stderr) == (0, "")
    assert render_stream(generated(body)) == render_stream(cli_objects(options))


def test_items_pass_through_and_earlier_output_is_replaced() -> None:
    other = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "alice"}}
    stale = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "from-a-removed-kd",
            "namespace": "alice",
            "labels": {"kuscia.secretflow/controller": "KusciaDeployment"},
        },
    }
    items = [other, *documents(KD_FILE), stale, *documents(IMAGE_FILE)]

    code, body, _ = call(None, items)

    assert code == 0
    kept = [i for i in body["items"] if krm.PATH_ANNOTATION not in _annotations(i)]
    assert kept == [other, *documents(KD_FILE), *documents(IMAGE_FILE)]
    assert generated(body) == list(cli_objects(Options()))
    assert body["items"][: len(kept)] == kept, "inputs first, then the generated objects"


def _annotations(item: dict[str, Any]) -> dict[str, str]:
    return dict(item["metadata"].get("annotations") or {})


def test_generated_items_name_their_file_in_the_output_dir_layout() -> None:
    code, body, _ = call(None, documents(KD_FILE) + documents(IMAGE_FILE))
    assert code == 0
    paths = [
        i["metadata"]["annotations"][krm.PATH_ANNOTATION]
        for i in body["items"]
        if krm.PATH_ANNOTATION in i["metadata"].get("annotations", {})
    ]
    assert paths == [
        "alice/configmap-secretflow-serving-configtemplate.yaml",
        "alice/service-secretflow-serving-brpc-builtin.yaml",
        "alice/service-secretflow-serving-internal.yaml",
        "alice/service-secretflow-serving-service.yaml",
        "alice/deployment-secretflow-serving.yaml",
        "bob/configmap-secretflow-serving-configtemplate.yaml",
        "bob/service-secretflow-serving-brpc-builtin.yaml",
        "bob/service-secretflow-serving-internal.yaml",
        "bob/service-secretflow-serving-service.yaml",
        "bob/deployment-secretflow-serving.yaml",
    ]


def test_sources_read_from_files_come_first_and_items_are_not_copied() -> None:
    """Issue 9: a kustomize generator emits the KD and AppImage it read from spec.files."""
    code, body, _ = call(generator(files=[str(EXAMPLE)]))
    assert code == 0
    kinds = [(i["kind"], i["metadata"]["annotations"][krm.PATH_ANNOTATION]) for i in body["items"]]
    assert kinds[:2] == [
        ("AppImage", "cross-domain/appimage-secretflow-serving-image.yaml"),
        ("KusciaDeployment", "cross-domain/kusciadeployment-secretflow-serving.yaml"),
    ]
    assert len(kinds) == 12

    code, body, _ = call(generator(files=[str(EXAMPLE)], includeSources=False))
    assert code == 0
    assert [i["kind"] for i in body["items"]].count("KusciaDeployment") == 0

    # Given as items (a kpt package), they stay as they are and are not emitted again.
    code, body, _ = call(None, documents(KD_FILE) + documents(IMAGE_FILE))
    assert code == 0
    assert [i["kind"] for i in body["items"]].count("AppImage") == 1
    assert [i["kind"] for i in body["items"]].count("KusciaDeployment") == 1


def test_problems_in_items_name_the_file_and_index_kpt_read_them_from() -> None:
    kd = documents(KD_FILE)[0]
    kd["spec"]["initiator"] = "carol"
    kd["metadata"]["annotations"] = {
        "internal.config.kubernetes.io/path": "apps/kds.yaml",
        "internal.config.kubernetes.io/index": "2",
    }
    items = [kd, *documents(IMAGE_FILE)]

    code, body, stderr = call(None, items)

    assert code == 1
    assert body["items"] == items, "input items come back unchanged"
    assert body["results"] == [
        {
            "message": "kusciaDeployment secretflow-serving initiator carol should be one of "
            "the parties",
            "severity": "error",
            "resourceRef": {
                "apiVersion": "kuscia.secretflow/v1alpha1",
                "kind": "KusciaDeployment",
                "name": "secretflow-serving",
                "namespace": "cross-domain",
            },
            "field": {"path": "spec.initiator"},
            "file": {"path": "apps/kds.yaml", "index": 2},
            "tags": {"reason": "ValidateFailed"},
        }
    ]
    assert stderr == (
        "error: apps/kds.yaml#3: KusciaDeployment cross-domain/secretflow-serving: "
        "spec.initiator: kusciaDeployment secretflow-serving initiator carol should be one of "
        "the parties [ValidateFailed]\n"
    )


@pytest.mark.parametrize(
    ("function_config", "want"),
    [
        pytest.param(
            generator(
                profile="helm", ports="random", includeSources="no", files="kd.yaml", extra=1
            ),
            [
                "error: <functionConfig>: spec.extra: unknown field; expected one of profile, "
                "ports, includeSources, files, inline",
                "error: <functionConfig>: spec.files: must be a list of paths",
                "error: <functionConfig>: spec.profile: must be one of kuscia, plain, not 'helm'",
                "error: <functionConfig>: spec.ports: must be one of declared, allocated, "
                "not 'random'",
                "error: <functionConfig>: spec.includeSources: must be one of true, false, "
                "not 'no'",
            ],
            id="every-bad-setting-at-once",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Secret"},
            [
                "error: <functionConfig>: functionConfig must be a "
                "kdgen.kuscia.secretflow/v1alpha1 KusciaDeploymentGenerator or a v1 ConfigMap"
            ],
            id="wrong-kind",
        ),
        pytest.param(
            generator(files=["no-such-dir"]),
            ["error: no-such-dir: no such file or directory"],
            id="missing-file",
        ),
    ],
)
def test_bad_function_configs_become_results(function_config: Any, want: list[str]) -> None:
    code, body, stderr = call(function_config)
    assert code == 1
    assert stderr.splitlines() == want
    assert [r["severity"] for r in body["results"]] == ["error"] * len(want)


def test_stdin_that_is_not_a_resource_list_is_an_error() -> None:
    outcome = krm.process("apiVersion: v1\nkind: List\n")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        "error: <stdin>: standard input must be one config.kubernetes.io/v1 ResourceList document\n"
    )
    assert yaml.safe_load(outcome.stdout)["results"][0]["severity"] == "error"


def test_same_input_same_bytes() -> None:
    body = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": documents(KD_FILE) + documents(IMAGE_FILE),
    }
    text = yaml.safe_dump(body)
    first = krm.process(text)
    assert first.exit_code == 0
    assert krm.process(text).stdout == first.stdout
