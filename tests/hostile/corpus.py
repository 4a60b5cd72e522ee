"""The hostile corpus: inputs a hostile contributor would try, each with its exact outcome.

Issue 10 "Done when". Every case is a folder laid out from ``files`` (plus symbolic links,
modes and FIFOs), one run of a kdgen command or plugin in it, and what must come back: the
exit status, the first line of stderr exactly (the case folder's real path reads ``<case>``),
and that no file changed except under ``writes``. ``tests/test_hostile.py`` runs them all in
one worker process under a CPU-time and address-space limit, with an alarm per case.

Each case states by hand its exit status and a phrase its first stderr line must hold
(``says``); the exact first line of every case is in ``expected.txt`` (``name``, exit status,
line, tab-separated), rewritten by ``pytest tests/test_hostile.py --update-golden`` and
reviewed like any golden file.

Classes (``Case.kind``): ``escape`` (paths leaving the tool's root), ``destroy`` (writes that
would replace what kdgen did not write), ``exhaust`` (tiny inputs that would take unbounded
time or memory), ``crash`` (inputs that used to raise a traceback), ``silent`` (inputs that
used to be accepted wrongly), ``escape-chars`` (control characters that must be escaped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
_EXAMPLE = REPO / "examples" / "secretflow-serving"
KD = (_EXAMPLE / "secretflow-serving.yaml").read_text(encoding="utf-8")
IMAGE = (_EXAMPLE / "secretflow-serving-image.yaml").read_text(encoding="utf-8")
KD_NAME = "KusciaDeployment cross-domain/secretflow-serving"
IMAGE_NAME = "AppImage cross-domain/secretflow-serving-image"
CONTAINER = "spec.deployTemplates[0].spec.containers[0]"


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    argv: tuple[str, ...]
    files: Mapping[str, bytes | str] = field(default_factory=dict)
    exit: int = 1
    says: str = ""
    """A phrase the first stderr line must contain (case-sensitive)."""
    links: Mapping[str, str] = field(default_factory=dict)
    """Symbolic links to create: name -> target."""
    modes: Mapping[str, int] = field(default_factory=dict)
    fifos: tuple[str, ...] = ()
    hardlinks: Mapping[str, str] = field(default_factory=dict)
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = "."
    writes: tuple[str, ...] = ()
    """Path prefixes the run may create or change; everything else must stay as it was."""
    after: Mapping[str, bytes | str] = field(default_factory=dict)
    """Files whose exact content after the run is checked (a written output, a kept file)."""
    after_modes: Mapping[str, int] = field(default_factory=dict)
    after_json: tuple[str, ...] = ()
    """Files that must still parse as JSON after the run."""


def kd(old: str = "", new: str = "") -> str:
    return KD.replace(old, new, 1) if old else KD


def image(old: str = "", new: str = "") -> str:
    return IMAGE.replace(old, new, 1) if old else IMAGE


def seed(**more: bytes | str) -> dict[str, bytes | str]:
    return {"kd.yaml": KD, "image.yaml": IMAGE, **more}


def with_label_block(text: str) -> str:
    return KD.replace("  labels:\n    kuscia.secretflow/app-type: serving\n", text, 1)


def resource_list(items: list[object] | None = None, config: object = None) -> bytes:
    body: dict[str, object] = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": items or [],
    }
    if config is not None:
        body["functionConfig"] = config
    return json.dumps(body).encode()


def generator(files: object) -> dict[str, object]:
    return {
        "apiVersion": "kdgen.kuscia.secretflow/v1alpha1",
        "kind": "KusciaDeploymentGenerator",
        "metadata": {"name": "kd"},
        "spec": {"files": files},
    }


def exec_config(inputs: str) -> str:
    return KD.replace(
        "  labels:\n",
        f"  annotations:\n    kdgen.kuscia.secretflow/inputs: {json.dumps(inputs)}\n  labels:\n",
        1,
    )


def party_block(count: int) -> str:
    return "".join(
        f"  - appImageRef: secretflow-serving-image\n    domainID: d{i}\n" for i in range(count)
    )


def many_parties(count: int) -> str:
    start = KD.index("  parties:\n") + len("  parties:\n")
    return KD[:start] + party_block(count)


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        previous = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([previous] * 10)}]")
    return "\n".join(lines) + "\n"


def ports(count: int, scope: str = "Local") -> str:
    block = "".join(
        f"        - name: p{i}\n          port: {20000 + i}\n          protocol: HTTP\n"
        f"          scope: {scope}\n"
        for i in range(count)
    )
    start = IMAGE.index("        ports:\n") + len("        ports:\n")
    end = IMAGE.index("        readinessProbe:")
    return IMAGE[:start] + block + IMAGE[end:]


def json_deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


ALLOCATED = "kuscia.secretflow/allocated-ports"
DEEP_INPUT = f"  inputConfig: '{json_deep(20000)}'\n"
DEEP_KD = KD[: KD.index("  inputConfig:")] + DEEP_INPUT + KD[KD.index("  parties:") :]
PORT_70000 = json.dumps(
    [
        {"domainID": d, "namedPort": {"service": 70000, "internal": 2, "brpc-builtin": 3}}
        for d in ("alice", "bob")
    ],
    separators=(",", ":"),
)
NEGATIVE = (
    "    domainID: bob\n    template:\n      spec:\n        containers:\n"
    "        - name: secretflow\n          resources:\n"
)

RENDERED = "out/alice/deployment-secretflow-serving.yaml"
MARKER_HEAD = (
    "# This folder is written by `kdgen generate --output-dir`; edits are overwritten.\n"
    "# kdgen replaces or removes only the files listed below, one a line.\n"
)
CASES: list[Case] = []


def case(
    name: str, kind: str, argv: tuple[str, ...], files: Mapping[str, bytes | str], **kw: object
) -> None:
    CASES.append(Case(name, kind, argv, files, **kw))  # type: ignore[arg-type]


# --- escape: every path a tool's configuration names stays inside the tool's root ----------

STOLEN = IMAGE.replace("secretflow-serving-image", "stolen")
APP = {"outside.yaml": STOLEN, "app/kd.yaml": KD, "app/image.yaml": IMAGE}
KRM = ("plugin", "krm")
EXEC = ("plugin", "kustomize-exec", "kd-config.yaml")
ARGO = ("plugin", "argocd-generate")
OUTSIDE = "is outside"
for name, files in [
    ("krm-spec-files-dot-dot", ["../outside.yaml"]),
    ("krm-spec-files-absolute", ["/etc/passwd"]),
    ("krm-spec-files-symlink-out", ["link.yaml"]),
    ("krm-spec-files-folder-with-link-out", ["sub"]),
    ("krm-spec-files-dot-dot-folder", [".."]),
]:
    case(
        name,
        "escape",
        KRM,
        APP,
        cwd="app",
        links={"app/link.yaml": "../outside.yaml", "app/sub/x.yaml": "../../outside.yaml"},
        stdin=resource_list(config=generator(files)),
        says=OUTSIDE,
    )
case(
    "krm-configmap-data-files-dot-dot",
    "escape",
    KRM,
    APP,
    cwd="app",
    stdin=resource_list(
        config={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"files": "image.yaml,../outside.yaml"},
        }
    ),
    says="data.files[1]: path '../outside.yaml' is outside",
)
case(
    "krm-spec-files-empty-path",
    "escape",
    KRM,
    APP,
    cwd="app",
    stdin=resource_list(config=generator([""])),
    says="spec.files[0]: path is empty",
)
case(
    "krm-spec-files-inside-is-read",
    "escape",
    KRM,
    APP,
    cwd="app",
    stdin=resource_list(config=generator(["kd.yaml", "image.yaml"])),
    exit=0,
)
for name, inputs in [
    ("exec-inputs-dot-dot", "../outside.yaml"),
    ("exec-inputs-absolute-folder", "/etc"),
    ("exec-inputs-symlink-out", "link.yaml"),
]:
    case(
        name,
        "escape",
        EXEC,
        {**APP, "app/kd-config.yaml": exec_config(inputs)},
        cwd="app",
        links={"app/link.yaml": "../outside.yaml"},
        says="metadata.annotations[kdgen.kuscia.secretflow/inputs]: path",
    )
case(
    "exec-inputs-inside-is-read",
    "escape",
    EXEC,
    {**APP, "app/kd-config.yaml": exec_config("image.yaml")},
    cwd="app",
    exit=0,
)
REPO_APP = {
    "repo/outside-repo.yaml": "",
    "outside.yaml": STOLEN,
    "repo/apps/kd/kd.yaml": KD,
    "repo/apps/kd/image.yaml": IMAGE,
    "repo/inventory.yaml": (
        "apiVersion: kdgen.kuscia.secretflow/v1alpha1\nkind: Inventory\n"
        "metadata:\n  name: facts\nspec: {}\n"
    ),
}
ARGO_ENV = {"ARGOCD_APP_SOURCE_PATH": "apps/kd"}
for name, inventory in [
    ("argocd-inventory-outside-the-repository", "../../../outside.yaml"),
    ("argocd-inventory-absolute", "/etc/passwd"),
    ("argocd-inventory-symlink-out", "link.inventory"),
]:
    case(
        name,
        "escape",
        ARGO,
        REPO_APP,
        cwd="repo/apps/kd",
        links={"repo/apps/kd/link.inventory": "../../../outside.yaml"},
        env={**ARGO_ENV, "ARGOCD_ENV_KDGEN_INVENTORY": inventory},
        says="ARGOCD_ENV_KDGEN_INVENTORY: path",
    )
case(
    "argocd-inventory-elsewhere-in-the-repository-is-read",
    "escape",
    ARGO,
    REPO_APP,
    cwd="repo/apps/kd",
    env={**ARGO_ENV, "ARGOCD_ENV_KDGEN_INVENTORY": "../../inventory.yaml"},
    exit=0,
)
case(
    "argocd-inventory-outside-the-app-without-source-path",
    "escape",
    ARGO,
    REPO_APP,
    cwd="repo/apps/kd",
    env={"ARGOCD_ENV_KDGEN_INVENTORY": "../../inventory.yaml"},
    says=OUTSIDE,
)
case(
    "argocd-app-folder-file-links-out",
    "escape",
    ARGO,
    REPO_APP,
    cwd="repo/apps/kd",
    links={"repo/apps/kd/zz-stolen.yaml": "../../../outside.yaml"},
    env=ARGO_ENV,
    says="application folder (zz-stolen.yaml): path",
)

# --- destroy: kdgen replaces or removes only what it wrote -------------------------------

RENDER = ("generate", "--output-dir", "out", "kd.yaml", "image.yaml")
case(
    "output-dir-keeps-a-file-kdgen-did-not-write",
    "destroy",
    RENDER,
    seed(
        **{
            "out/.kdgen": MARKER_HEAD + "alice/old.yaml\n",
            "out/alice/old.yaml": "old\n",
            "out/alice/notes.yaml": "mine\n",
        }
    ),
    exit=0,
    writes=("out/",),
    after={"out/alice/notes.yaml": "mine\n"},
    after_modes={"out/alice/deployment-secretflow-serving.yaml": 0o644},
)
case(
    "output-dir-refuses-to-replace-an-unrecorded-file",
    "destroy",
    RENDER,
    seed(**{"out/.kdgen": MARKER_HEAD, "out/alice/deployment-secretflow-serving.yaml": "mine\n"}),
    exit=2,
    says="kdgen did not write it",
)
case(
    "output-dir-holding-the-inputs",
    "destroy",
    ("generate", "--output-dir", "in", "in/kd.yaml", "in/image.yaml"),
    {"in/kd.yaml": KD, "in/image.yaml": IMAGE, "in/.kdgen": MARKER_HEAD + "kd.yaml\n"},
    exit=2,
    says="it holds the input",
)
case(
    "output-dir-is-a-symlink",
    "destroy",
    RENDER,
    seed(**{"elsewhere/keep.txt": "keep\n"}),
    links={"out": "elsewhere"},
    exit=2,
    says="it is a symbolic link",
)
case(
    "output-dir-domain-folder-is-a-symlink",
    "destroy",
    RENDER,
    seed(**{"out/.kdgen": MARKER_HEAD, "elsewhere/keep.txt": "keep\n"}),
    links={"out/alice": "../elsewhere"},
    exit=2,
    says="refusing to write into out/alice: it is a symbolic link",
)
case(
    "output-dir-file-is-a-symlink",
    "destroy",
    RENDER,
    seed(
        **{
            "out/.kdgen": MARKER_HEAD + "alice/deployment-secretflow-serving.yaml\n",
            "victim.txt": "victim\n",
        }
    ),
    links={RENDERED: "../../victim.txt"},
    exit=2,
    says="it is a symbolic link",
)
case(
    "output-dir-marker-naming-a-file-outside",
    "destroy",
    RENDER,
    seed(**{"out/.kdgen": MARKER_HEAD + "../kd.yaml\n/etc/passwd\nalice/../../image.yaml\n"}),
    exit=0,
    writes=("out/",),
    after={"kd.yaml": KD, "image.yaml": IMAGE},
)
case(
    "output-dir-is-a-file",
    "destroy",
    RENDER,
    seed(out="not a folder\n"),
    exit=2,
    says="Directory 'out' is a file",
)
case(
    "output-dir-without-marker",
    "destroy",
    RENDER,
    seed(**{"out/notes.txt": "mine\n"}),
    exit=2,
    says="was not written by kdgen",
)
CHECK = ("check", "--update", "kd.yaml", "image.yaml", "--golden")
case(
    "check-update-over-an-input",
    "destroy",
    (*CHECK, "kd.yaml"),
    seed(),
    exit=2,
    says="one of the inputs",
)
case(
    "check-update-over-a-file-kdgen-did-not-generate",
    "destroy",
    (*CHECK, "notes.yaml"),
    seed(**{"notes.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"}),
    exit=2,
    says="does not hold a stream kdgen generated",
)
case(
    "check-update-over-a-symlink",
    "destroy",
    (*CHECK, "golden.yaml"),
    seed(**{"real.yaml": ""}),
    links={"golden.yaml": "real.yaml"},
    exit=2,
    says="it is a symbolic link",
)
case(
    "check-update-tree-not-written-by-kdgen",
    "destroy",
    (*CHECK, "tree"),
    seed(**{"tree/notes.txt": "mine\n"}),
    exit=2,
    says="was not written by kdgen",
)
case(
    "check-update-new-file-is-written",
    "destroy",
    (*CHECK, "golden.yaml"),
    seed(),
    exit=0,
    says="updated golden.yaml",
    writes=("golden.yaml",),
    after_modes={"golden.yaml": 0o644},
)
case(
    "check-golden-not-utf8",
    "destroy",
    ("check", "kd.yaml", "image.yaml", "--golden", "golden.yaml"),
    seed(**{"golden.yaml": b"kind: \xff\n"}),
    says="golden.yaml: line 1, column 7: not valid UTF-8 (byte 0xff)",
)
PIN = ("pin-ports", "kd.yaml", "image.yaml")
case(
    "pin-ports-read-only-file",
    "destroy",
    PIN,
    seed(),
    modes={"kd.yaml": 0o444},
    exit=2,
    says="read-only",
)
case(
    "pin-ports-symlinked-file",
    "destroy",
    ("pin-ports", "link.yaml", "image.yaml"),
    seed(),
    links={"link.yaml": "kd.yaml"},
    exit=2,
    says="it is a symbolic link",
)
case(
    "pin-ports-hard-linked-file",
    "destroy",
    PIN,
    seed(),
    hardlinks={"copy.yaml": "kd.yaml"},
    exit=2,
    says="hard links",
)
case(
    "pin-ports-keeps-mode-and-bom",
    "destroy",
    PIN,
    seed(**{"kd.yaml": ("\ufeff" + KD).encode()}),
    modes={"kd.yaml": 0o640},
    exit=0,
    says="pinned kd.yaml",
    writes=("kd.yaml",),
    after_modes={"kd.yaml": 0o640},
)
case(
    "pin-ports-keeps-crlf",
    "destroy",
    PIN,
    seed(**{"kd.yaml": KD.replace("\n", "\r\n")}),
    exit=0,
    says="pinned kd.yaml",
    writes=("kd.yaml",),
)
KD_JSON = json.dumps(yaml.safe_load(KD), indent=2) + "\n"
case(
    "pin-ports-json-stays-json",
    "destroy",
    ("pin-ports", "kd.json", "image.yaml"),
    {"kd.json": KD_JSON, "image.yaml": IMAGE},
    exit=0,
    says="pinned kd.json",
    writes=("kd.json",),
    after_json=("kd.json",),
)
case(
    "pin-ports-json-layout-it-cannot-keep",
    "destroy",
    ("pin-ports", "kd.json", "image.yaml"),
    {"kd.json": KD_JSON.replace('"kind": ', '"kind":    ', 1), "image.yaml": IMAGE},
    says="cannot keep the layout of this JSON document",
)
case(
    "generate-new-tree-honours-the-umask",
    "destroy",
    RENDER,
    seed(),
    exit=0,
    writes=("out/",),
    after_modes={RENDERED: 0o644, "out/.kdgen": 0o644},
)

# --- exhaust: tiny inputs, bounded time and memory ---------------------------------------

VALIDATE = ("validate", "kd.yaml", "image.yaml")
case(
    "alias-bomb",
    "exhaust",
    VALIDATE,
    seed(**{"kd.yaml": alias_bomb(9)}),
    says="more than 2000000 YAML nodes",
)
case(
    "alias-count",
    "exhaust",
    VALIDATE,
    seed(**{"kd.yaml": "a: &a x\nb: [" + ", ".join(["*a"] * 10001) + "]\n"}),
    says="more than 10000 aliases",
)
case(
    "alias-bomb-through-krm-stdin",
    "exhaust",
    KRM,
    {},
    stdin=alias_bomb(9).encode(),
    says="more than 2000000 YAML nodes",
)
INDEXED = yaml.safe_load(IMAGE)
INDEXED["metadata"]["annotations"] = {
    "config.kubernetes.io/path": "image.yaml",
    "config.kubernetes.io/index": "100000000",
}
case(
    "krm-index-annotation-huge",
    "exhaust",
    KRM,
    {},
    stdin=resource_list([INDEXED]),
    says="must be a document index",
)
case(
    "parties-over-the-bound",
    "exhaust",
    VALIDATE,
    seed(**{"kd.yaml": many_parties(101)}),
    says="101 parties",
)
case(
    "documents-over-the-bound",
    "exhaust",
    ("validate", "."),
    seed(**{"many.yaml": "---\n{}\n" * 25001}),
    says="more than 25000 documents in one run",
)
case(
    "mapping-400-deep",
    "exhaust",
    VALIDATE,
    seed(**{"kd.yaml": KD + "status:\n" + "".join(f"{'  ' * (i + 1)}a:\n" for i in range(400))}),
    says="nested deeper than 64 levels",
)
case(
    "flow-list-100000-deep",
    "exhaust",
    VALIDATE,
    seed(**{"kd.yaml": "[" * 100000 + "]" * 100000}),
    says="exceeded maximum nesting depth",
)
case(
    "input-over-16-mib",
    "exhaust",
    ("validate", "."),
    seed(**{"big.yaml": "# " + "x" * (16 * 1024 * 1024) + "\n"}),
    says="larger than the limit of 16777216 bytes",
)
case(
    "stdin-over-16-mib",
    "exhaust",
    ("generate", "-"),
    {},
    stdin=b"# " + b"x" * (16 * 1024 * 1024),
    says="<stdin>: input is larger than the limit",
)
case(
    "config-template-over-1-mib",
    "exhaust",
    VALIDATE,
    seed(**{"image.yaml": image("      {\n", "      " + "x" * (1024 * 1024) + "\n      {\n")}),
    says="config template of",
)
case(
    "ports-over-the-bound",
    "exhaust",
    VALIDATE,
    seed(**{"image.yaml": ports(257)}),
    says="257 ports",
)
case(
    "allocated-ports-json-100000-deep",
    "exhaust",
    ("validate", "--ports", "allocated", "kd.yaml", "image.yaml"),
    seed(
        **{
            "kd.yaml": with_label_block(
                f"  annotations:\n    {ALLOCATED}: '{json_deep(100000)[:200000]}'\n"
            )
        }
    ),
    says="metadata.annotations",
)
case(
    "allocated-ports-json-70-deep",
    "exhaust",
    ("validate", "--ports", "allocated", "kd.yaml", "image.yaml"),
    seed(
        **{"kd.yaml": with_label_block(f"  annotations:\n    {ALLOCATED}: '[{json_deep(70)}]'\n")}
    ),
    says="JSON nested deeper than 64 levels",
)
case(
    "annotation-over-1-mib",
    "exhaust",
    VALIDATE,
    seed(
        **{"kd.yaml": with_label_block("  annotations:\n    a: " + "x" * (1024 * 1024 + 1) + "\n")}
    ),
    says="the apiserver takes at most 256 KiB",
)
case(
    "string-over-1-mib",
    "exhaust",
    VALIDATE,
    seed(**{"image.yaml": image("        - sh\n", "        - " + "x" * (1024 * 1024 + 1) + "\n")}),
    says="bytes; kdgen takes at most 1048576",
)
case(
    "integer-5000-digits",
    "exhaust",
    VALIDATE,
    seed(**{"image.yaml": image("port: 53509", "port: " + "9" * 5000)}),
    says="integer does not fit in 64 bits",
)

# --- crash: inputs that used to raise a traceback ----------------------------------------

case(
    "unquoted-date-as-domain-id",
    "crash",
    VALIDATE,
    seed(
        **{
            "kd.yaml": kd("domainID: alice", "domainID: 2024-01-02").replace(
                "initiator: alice", "initiator: 2024-01-02"
            )
        }
    ),
    exit=0,
    says="ok: 1 KusciaDeployment(s)",
)
case(
    "labels-as-a-list",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": with_label_block("  labels: [a, b]\n")}),
    says="metadata.labels: must be a mapping",
)
case(
    "kind-as-a-list",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": kd("kind: KusciaDeployment", "kind: [KusciaDeployment]")}),
    says="apiVersion and kind must be strings",
)
case(
    "kind-as-a-mapping",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": kd("kind: KusciaDeployment", "kind: {a: b}")}),
    says="apiVersion and kind must be strings",
)
case(
    "metadata-as-a-list",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": kd("metadata:\n", "metadata: [x]\nx:\n")}),
    says="metadata",
)
case(
    "spec-as-a-string",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": KD[: KD.index("spec:")] + "spec: text\n"}),
    says="spec",
)
case(
    "parties-as-a-mapping",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": KD[: KD.index("  parties:")] + "  parties: {a: b}\n"}),
    says="spec.parties",
)
case(
    "name-as-a-number",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": kd("  name: secretflow-serving", "  name: 12")}),
    says="metadata.name",
)
case(
    "document-is-a-list",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": "- a\n- b\n"}),
    says="document is not a mapping",
)
case(
    "document-is-a-scalar",
    "crash",
    VALIDATE,
    seed(**{"kd.yaml": "just text\n"}),
    says="document is not a mapping",
)
case(
    "input-config-json-20000-deep-is-passed-through",
    "crash",
    ("validate", "--profile", "plain", "kd.yaml", "image.yaml"),
    seed(
        **{"kd.yaml": KD[: KD.index("  inputConfig:")] + DEEP_INPUT + KD[KD.index("  parties:") :]}
    ),
    exit=0,
    says="ok: 1 KusciaDeployment(s)",
)
case(
    "random-bytes-on-stdin",
    "crash",
    ("generate", "-"),
    {},
    stdin=bytes(range(256)) * 4,
    says="<stdin>",
)
case(
    "random-bytes-on-krm-stdin",
    "crash",
    KRM,
    {},
    stdin=b"\x80\x81\xfe\xff" * 64,
    says="not valid UTF-8",
)
case(
    "krm-items-not-a-list",
    "crash",
    KRM,
    {},
    stdin=b'{"apiVersion":"config.kubernetes.io/v1","kind":"ResourceList","items":{"a":1}}',
    says="items must be a list",
)
case(
    "krm-spec-files-not-a-list",
    "crash",
    KRM,
    {},
    stdin=resource_list(config=generator("kd.yaml")),
    says="spec.files: must be a list of paths",
)
case(
    "krm-index-annotation-not-a-number",
    "crash",
    KRM,
    {},
    stdin=resource_list(
        [
            {
                **INDEXED,
                "metadata": {
                    **INDEXED["metadata"],
                    "annotations": {
                        "config.kubernetes.io/path": "x.yaml",
                        "config.kubernetes.io/index": "one",
                    },
                },
            }
        ]
    ),
    says="must be a document index",
)
case(
    "krm-item-metadata-a-number",
    "crash",
    KRM,
    {},
    stdin=resource_list([{**INDEXED, "metadata": 7}]),
    says="metadata",
)
case(
    "fifo-in-an-input-folder",
    "crash",
    ("validate", "in"),
    {"in/kd.yaml": KD},
    fifos=("in/pipe.yaml",),
    says="not a regular file",
)
case(
    "exec-config-not-utf8",
    "crash",
    EXEC,
    {"kd-config.yaml": b"kind: \xc3\x28\n"},
    says="not valid UTF-8",
)
case("exec-config-missing", "crash", EXEC, {}, says="cannot read file")
case(
    "exec-config-empty",
    "crash",
    EXEC,
    {"kd-config.yaml": ""},
    exit=0,
    says="warning: no KusciaDeployment among the inputs",
)
case(
    "argocd-app-folder-not-utf8",
    "crash",
    ARGO,
    {"app/kd.yaml": b"\xff"},
    cwd="app",
    says="not valid UTF-8",
)

# --- silent: inputs that used to be accepted wrongly ---------------------------------------

case(
    "duplicate-key",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": kd("spec:\n", "spec:\n  initiator: bob\n")}),
    says="duplicate key 'initiator'",
)
case(
    "duplicate-key-in-json",
    "silent",
    ("validate", "kd.json"),
    seed(**{"kd.json": '{"kind": "a", "kind": "b"}'}),
    says="duplicate key 'kind'",
)
for tag, text in [
    ("binary", "!!binary aGVsbG8="),
    ("set", "!!set {a, b}"),
    ("timestamp", "!!timestamp 2024-01-02"),
    ("omap", "!!omap [a: 1]"),
    ("custom", "!secret x"),
    ("python", "!!python/object:os.system x"),
]:
    case(
        f"yaml-tag-{tag}",
        "silent",
        VALIDATE,
        seed(**{"kd.yaml": kd("  inputConfig: ", f"  x: {text}\n  inputConfig: ")}),
        says="is not allowed: kdgen reads JSON-compatible YAML",
    )
case(
    "annotation-value-a-number",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": with_label_block("  annotations:\n    a: 1\n")}),
    says="metadata.annotations[a]: must be a string, got 1",
)
case(
    "annotation-value-a-list",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": with_label_block("  annotations:\n    a: [1]\n")}),
    says="must be a string",
)
case(
    "label-key-invalid",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": with_label_block("  labels:\n    'a b': c\n")}),
    says="is not a qualified name",
)
for number in ("0", "70000", "-1"):
    case(
        f"port-{number}",
        "silent",
        VALIDATE,
        seed(**{"image.yaml": image("port: 53509", f"port: {number}")}),
        says=f"port number {number} is out of range",
    )
case(
    "allocated-port-70000",
    "silent",
    ("validate", "--ports", "allocated", "kd.yaml", "image.yaml"),
    seed(**{"kd.yaml": with_label_block(f"  annotations:\n    {ALLOCATED}: '{PORT_70000}'\n")}),
    says="70000 is not a port number (1-65535)",
)
case(
    "negative-cpu-limit",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": kd("    domainID: bob\n", NEGATIVE + "            limits: {cpu: '-1'}\n")}),
    says="quantity '-1' is negative",
)
case(
    "negative-memory-request",
    "silent",
    VALIDATE,
    seed(
        **{"kd.yaml": kd("    domainID: bob\n", NEGATIVE + "            requests: {memory: -5}\n")}
    ),
    says="quantity -5 is negative",
)
case(
    "negative-quantity-with-suffix",
    "silent",
    VALIDATE,
    seed(
        **{
            "kd.yaml": kd(
                "    domainID: bob\n", NEGATIVE + "            requests: {memory: -1Gi}\n"
            )
        }
    ),
    says="is negative",
)
case(
    "dangling-symlink-in-a-folder",
    "silent",
    ("validate", "in"),
    {"in/kd.yaml": KD, "in/image.yaml": IMAGE},
    links={"in/gone.yaml": "nowhere.yaml"},
    says="dangling symbolic link",
)
case(
    "symlink-loop-in-a-folder",
    "silent",
    ("validate", "in"),
    {"in/kd.yaml": KD, "in/image.yaml": IMAGE},
    links={"in/loop.yaml": "loop.yaml"},
    says="symbolic link loop",
)
case(
    "symlink-loop-as-argument",
    "silent",
    ("validate", "loop.yaml"),
    {},
    links={"loop.yaml": "loop.yaml"},
    says="symbolic link loop",
)
case("empty-path-argument", "silent", ("validate", ""), seed(), says="path is empty")
case(
    "empty-output-dir",
    "silent",
    ("generate", "--output-dir", "", "kd.yaml", "image.yaml"),
    seed(),
    exit=2,
    says="the path is empty",
)
case(
    "nul-byte", "silent", VALIDATE, seed(**{"kd.yaml": KD.encode() + b"x: \x00\n"}), says="NUL byte"
)
case(
    "non-utf8-file",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": KD.encode().replace(b"alice", b"al\xe9ce", 1)}),
    says="not valid UTF-8 (byte 0xe9)",
)
case(
    "utf16-file",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": KD.encode("utf-16")}),
    says="not valid UTF-8",
)
case(
    "nan-value",
    "silent",
    VALIDATE,
    seed(**{"image.yaml": image("replicas: 1", "replicas: .nan")}),
    says="is not a JSON number",
)
case(
    "mapping-key-a-number",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": with_label_block("  labels:\n    1: a\n")}),
    says="mapping key 1 is not a string",
)
case(
    "mapping-key-a-boolean",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": with_label_block("  labels:\n    on: a\n")}),
    says="mapping key True is not a string",
)
case(
    "merge-key-to-a-scalar",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": kd("spec:\n", "spec:\n  <<: 1\n")}),
    says="a merge key (<<) takes a mapping",
)
case(
    "undefined-alias",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": kd("  initiator: alice", "  initiator: *nobody")}),
    says="alias *nobody does not refer",
)
case(
    "recursive-alias",
    "silent",
    VALIDATE,
    seed(**{"kd.yaml": "a: &a [*a]\n"}),
    says="does not refer to an earlier, complete node",
)

# --- escape-chars: control characters from inputs are escaped in every message ------------


def _with_spec_key(body: Any, key: str) -> Any:
    body["spec"][key] = 1
    return body


ESC = "\x1b]0;pwned\x07\x1b[2J"
case(
    "escape-in-a-file-name",
    "escape-chars",
    ("validate", f"{ESC}.yaml"),
    {f"{ESC}.yaml": "- a\n"},
    says="\\x1b]0;pwned\\x07\\x1b[2J.yaml#1: document is not a mapping",
)
case("escape-in-a-missing-path", "escape-chars", ("validate", f"x{ESC}"), {}, says="x\\x1b]0;pwned")
case(
    "escape-in-a-key",
    "escape-chars",
    VALIDATE,
    seed(
        **{
            "kd.yaml": kd(
                "spec:\n", f'spec:\n  "{ESC}": 1\n'.replace("\x1b", "\\e").replace("\x07", "\\a")
            )
        }
    ),
    says="\\x1b[2J",
)
case(
    "escape-in-a-value",
    "escape-chars",
    VALIDATE,
    seed(**{"image.yaml": image("protocol: HTTP", 'protocol: "\\e[31mHTTP"')}),
    says="\\u001b[31mHTTP",
)
case(
    "bidi-override-in-a-value",
    "escape-chars",
    VALIDATE,
    seed(**{"image.yaml": image("protocol: HTTP", "protocol: \u202eHTTP")}),
    says="\\u202eHTTP",
)
case(
    "escape-through-krm",
    "escape-chars",
    KRM,
    {},
    stdin=resource_list([_with_spec_key(yaml.safe_load(IMAGE), "x\x1b[2J")]),
    says="\\x1b[2J",
)
case(
    "escape-through-exec",
    "escape-chars",
    EXEC,
    {"kd-config.yaml": kd("spec:\n", 'spec:\n  "\\e[2J": 1\n')},
    says="\\x1b[2J",
)
case(
    "escape-through-argocd",
    "escape-chars",
    ARGO,
    {"app/kd.yaml": kd("spec:\n", 'spec:\n  "\\e[2J": 1\n')},
    cwd="app",
    says="\\x1b[2J",
)
case(
    "escape-in-an-argocd-setting",
    "escape-chars",
    ARGO,
    {"app/kd.yaml": KD},
    cwd="app",
    env={"ARGOCD_ENV_KDGEN_PORTS": "\x1b[2J"},
    says="not '\\x1b[2J'",
)
case(
    "escape-in-an-output-dir",
    "escape-chars",
    ("generate", "--output-dir", f"o{ESC}", "kd.yaml", "image.yaml"),
    seed(**{f"o{ESC}": "file\n"}),
    exit=2,
    says="o\\x1b]0;pwned",
)


def _at_index(path: str, index: str) -> Any:
    body = yaml.safe_load(IMAGE)
    body["metadata"]["annotations"] = {
        "config.kubernetes.io/path": path,
        "config.kubernetes.io/index": index,
    }
    return body


case(
    "krm-index-annotations-placing-too-many-documents",
    "exhaust",
    KRM,
    {},
    stdin=resource_list([_at_index(f"f{i}.yaml", "9999") for i in range(3)]),
    says="place 30000 documents",
)

CHECKOUT = {
    "repo/.git/HEAD": "ref: refs/heads/main\n",
    "repo/shared/image.yaml": IMAGE,
    "repo/app/kd.yaml": KD,
    "outside.yaml": STOLEN,
}
case(
    "krm-spec-files-beside-the-folder-in-the-checkout-is-read",
    "escape",
    KRM,
    CHECKOUT,
    cwd="repo/app",
    stdin=resource_list(config=generator(["kd.yaml", "../shared/image.yaml"])),
    exit=0,
)
case(
    "krm-spec-files-outside-the-checkout",
    "escape",
    KRM,
    CHECKOUT,
    cwd="repo/app",
    stdin=resource_list(config=generator(["kd.yaml", "../../outside.yaml"])),
    says="spec.files[1]: path '../../outside.yaml' is outside <case>/repo",
)
case(
    "exec-inputs-outside-the-checkout",
    "escape",
    EXEC,
    {**CHECKOUT, "repo/app/kd-config.yaml": exec_config("../shared/image.yaml,../../outside.yaml")},
    cwd="repo/app",
    says="path '../../outside.yaml' is outside <case>/repo",
)
case(
    "exec-inputs-beside-the-folder-in-the-checkout-is-read",
    "escape",
    EXEC,
    {**CHECKOUT, "repo/app/kd-config.yaml": exec_config("../shared/image.yaml")},
    cwd="repo/app",
    exit=0,
)


def containers(count: int) -> str:
    """The seed AppImage with ``count`` containers: the seed's, then copies without ports."""
    body = yaml.safe_load(IMAGE)
    first = body["spec"]["deployTemplates"][0]["spec"]["containers"][0]
    extra = {
        k: v
        for k, v in first.items()
        if k not in ("ports", "readinessProbe", "livenessProbe", "startupProbe")
    }
    body["spec"]["deployTemplates"][0]["spec"]["containers"] += [
        {**extra, "name": f"c{i}"} for i in range(1, count)
    ]
    return yaml.safe_dump(body, sort_keys=False)


HUNDRED = KD[: KD.index("  parties:\n")].replace("initiator: alice", "initiator: d0")
HUNDRED += "  parties:\n" + party_block(100)
case(
    "objects-over-the-bound",
    "exhaust",
    ("generate", "kd.yaml", "image.yaml"),
    seed(**{"kd.yaml": HUNDRED, "image.yaml": ports(256, "Domain")}),
    says="would generate 25800 objects; kdgen makes at most 2000 from one",
)


def kds(count: int, parties: int) -> str:
    """``count`` copies of the seed KD (``kd-0``, ``kd-1``, ...), each with ``parties`` parties."""
    head = KD[: KD.index("  parties:\n")].replace("initiator: alice", "initiator: d0")
    one = head + "  parties:\n" + party_block(parties)
    return "".join(
        "---\n" + one.replace("name: secretflow-serving\n", f"name: kd-{i}\n", 1)
        for i in range(count)
    )


case(
    "objects-per-run-over-the-bound",
    "exhaust",
    ("generate", "kd.yaml", "image.yaml"),
    # 776 one-party KDs of 256 Services, a ConfigMap and a Deployment = 200,208 objects, each
    # KD within its own bounds and the run's bytes (about 0.56 MB a KD): the 776th passes.
    seed(**{"kd.yaml": kds(776, 1), "image.yaml": ports(256, "Domain")}),
    says="kd.yaml#776: KusciaDeployment cross-domain/kd-775: spec.parties: with this "
    "KusciaDeployment the run would generate more than 200000 objects",
)
case(
    "output-per-run-over-the-bound",
    "exhaust",
    ("generate", "kd.yaml", "image.yaml"),
    # 100 parties of 4 containers: about 11.4 MB a KD by the estimate (11.1 MB written), so
    # the 47th KD passes 512 MiB; nothing is built.
    seed(**{"kd.yaml": kds(50, 100), "image.yaml": containers(4)}),
    says="kd.yaml#47: KusciaDeployment cross-domain/kd-46: spec.parties: with this "
    "KusciaDeployment the run would generate more than about 536870912 bytes",
)


def rendering(template: str) -> str:
    """The seed AppImage with one config template, ``template``."""
    body = yaml.safe_load(IMAGE)
    body["spec"]["configTemplates"] = {"app.conf": template}
    return yaml.safe_dump(body, sort_keys=False)


case(
    "config-template-rendering-amplification",
    "exhaust",
    ("generate", "--profile", "plain", "kd.yaml", "image.yaml"),
    # 50,000 references to a 10 KB CLUSTER_DEFINE in a 950 KB template: 500 MB per party if
    # rendered. The bound is worked out from the template and the values; nothing renders.
    seed(**{"kd.yaml": HUNDRED, "image.yaml": rendering("{{.CLUSTER_DEFINE}}\n" * 50000)}),
    says="kdgen writes at most 16777216 from one",
)
case(
    "containers-over-the-bound",
    "exhaust",
    VALIDATE,
    seed(**{"image.yaml": containers(65)}),
    says="65 containers; kdgen takes at most 64",
)
case(
    "cluster-define-amplification",
    "exhaust",
    ("generate", "kd.yaml", "image.yaml"),
    seed(**{"kd.yaml": HUNDRED, "image.yaml": containers(64)}),
    says="kdgen writes at most 16777216 from one",
)
