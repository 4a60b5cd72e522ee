"""Same input, same bytes: a 100-KD input through the real CLI, across runs and hash seeds.

Kuscia's controller iterates Go maps (random order) when it lists services, ports, env and
access domains (spec §15 row 3); kdgen must not. Python's own source of such randomness is
string hashing, so each run gets a different ``PYTHONHASHSEED``, in a separate process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KD_COUNT = 100
DOMAINS = ("alice", "bob", "carol", "dave", "erin")
HASH_SEEDS = ("0", "1", "random")

APP_IMAGES = """\
apiVersion: kuscia.secretflow/v1alpha1
kind: AppImage
metadata:
  name: multi
spec:
  configTemplates:
    app.conf: |
      id={{.KUSCIA_DOMAIN_ID}} ports={{.ALLOCATED_PORTS}} def={{.CLUSTER_DEFINE}}
    other.conf: |
      input={{.INPUT_CONFIG}}
  deployTemplates:
  - name: server
    role: server,host
    networkPolicy:
      ingresses:
      - from:
          roles: [client]
        ports:
        - port: api
    spec:
      containers:
      - name: main
        workingDir: /app
        configVolumeMounts:
        - mountPath: /etc/app.conf
          subPath: app.conf
        metricProbe:
          path: /metrics
          port: metrics
        ports:
        - {name: api, port: 8080, scope: Cluster}
        - {name: internal, port: 8081, scope: Domain}
        - {name: metrics, port: 8082}
      - name: sidecar
        workingDir: /side
        env:
        - {name: B, value: "2"}
        - {name: A, value: "1"}
        ports:
        - {name: side, port: 8083, scope: Domain, protocol: GRPC}
  - name: client
    spec:
      containers:
      - name: client
        workingDir: /client
        ports:
        - {name: grpc, port: 9090, scope: Cluster, protocol: GRPC}
  image: {name: example/app, tag: "1", id: abc}
"""

INVENTORY = """\
apiVersion: kdgen.kuscia.secretflow/v1alpha1
kind: Inventory
spec:
  domains:
  - {domainID: erin, role: partner}
  takenPorts:
  - {namespace: alice, ports: [20000, 20001, 20002]}
  templateValues: {UNUSED: x}
"""


def _kusciadeployment(i: int) -> str:
    """KD number ``i``: 1 to 4 parties over the domains, some with roles, labels, annotations."""
    count = 1 + i % 4
    parties = []
    for p in range(count):
        domain = DOMAINS[(i + 2 * p) % len(DOMAINS)]
        role = ("server", "client", "host", "")[(i + p) % 4]
        line = f"  - domainID: {domain}\n    appImageRef: multi\n"
        if role:
            line += f"    role: {role}\n"
        if (i + p) % 7 == 0:
            line += "    template:\n      replicas: 2\n"
        parties.append(line)
    # a domain may repeat only with a different role: drop repeats
    seen: set[tuple[str, str]] = set()
    unique = []
    for line in parties:
        key = (line.split("domainID: ")[1].split("\n")[0], line.split("role: ")[-1])
        if key not in seen:
            seen.add(key)
            unique.append(line)
    initiator = unique[0].split("domainID: ")[1].split("\n")[0]
    labels = "  labels:\n    kuscia.secretflow/app-type: serving\n" if i % 3 == 0 else ""
    return (
        "apiVersion: kuscia.secretflow/v1alpha1\n"
        "kind: KusciaDeployment\n"
        "metadata:\n"
        f"  name: kd-{i:03d}\n"
        "  namespace: cross-domain\n"
        f"{labels}"
        "spec:\n"
        f"  initiator: {initiator}\n"
        f'  inputConfig: \'{{"kd": {i}, "z": [3, 2, 1], "a": {{"y": 1, "x": 2}}}}\'\n'
        "  parties:\n" + "".join(unique)
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hundred")
    (root / "appimages.yaml").write_text(APP_IMAGES, encoding="utf-8")
    (root / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    # Several KDs per file, in an order that is neither name nor file order.
    files: dict[int, list[str]] = {}
    for i in reversed(range(KD_COUNT)):
        files.setdefault(i % 7, []).append(_kusciadeployment(i))
    for n, documents in files.items():
        (root / f"kds-{n}.yaml").write_text("---\n".join(documents), encoding="utf-8")
    return root


def _kds_with_self_parties(root: Path) -> set[str]:
    names = set()
    count = 0
    for file in root.glob("kds-*.yaml"):
        for kd in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            count += 1
            if any(p["domainID"] != "erin" for p in kd["spec"]["parties"]):
                names.add(kd["metadata"]["name"])
    assert count == KD_COUNT
    return names


def _generate(args: list[str], seed: str, cwd: Path) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    result = subprocess.run(
        [sys.executable, "-m", "kdgen", "generate", *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--ports", "allocated"], id="kuscia-allocated"),
        pytest.param(["--profile", "plain", "--ports", "allocated"], id="plain-allocated"),
    ],
)
def test_hundred_kds_give_the_same_bytes_under_every_hash_seed(
    inputs: Path, options: list[str]
) -> None:
    outputs = {seed: _generate([".", *options], seed, inputs) for seed in HASH_SEEDS}
    again = _generate([".", *options], HASH_SEEDS[0], inputs)

    baseline = outputs[HASH_SEEDS[0]]
    assert again == baseline
    assert {seed: out == baseline for seed, out in outputs.items()} == dict.fromkeys(
        HASH_SEEDS, True
    )
    # The input really is 100 KDs, and every KD with a self party has objects.
    everything = list(yaml.safe_load_all(baseline))
    objects = [o for o in everything if o["kind"] not in ("AppImage", "KusciaDeployment")]
    assert sum(o["kind"] == "KusciaDeployment" for o in everything) == KD_COUNT
    kd_names = {o["metadata"]["labels"]["kuscia.secretflow/kd-name"] for o in objects}
    assert kd_names == _kds_with_self_parties(inputs)
    assert len(kd_names) > 0.9 * KD_COUNT
    assert {o["kind"] for o in objects} == {"ConfigMap", "Service", "Deployment"}
    assert "erin" not in {o["metadata"]["namespace"] for o in objects}


def test_file_order_on_the_command_line_does_not_matter(inputs: Path) -> None:
    files = sorted(p.name for p in inputs.iterdir())
    forward = _generate([*files, "--ports", "allocated"], "0", inputs)
    backward = _generate([*reversed(files), "--ports", "allocated"], "1", inputs)
    assert forward == backward


def test_allocated_numbers_are_unique_per_namespace(inputs: Path) -> None:
    """Spec §15 row 2: across all 100 KDs, no number is given twice in one namespace."""
    out = _generate([".", "--ports", "allocated"], "0", inputs)
    seen: dict[tuple[str, int], str] = {}
    for obj in yaml.safe_load_all(out):
        if obj["kind"] != "Deployment":
            continue
        namespace = obj["metadata"]["namespace"]
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for port in container.get("ports", []):
                key = (namespace, port["containerPort"])
                owner = f"{obj['metadata']['name']}/{port['name']}"
                assert seen.setdefault(key, owner) == owner, f"{key} given twice"
                assert 20000 <= port["containerPort"] <= 32766
    assert ("alice", 20000) not in seen  # the inventory's takenPorts are skipped
