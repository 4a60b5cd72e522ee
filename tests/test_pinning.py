"""kdgen.pinning: the allocated-ports annotation goes in, and every other byte stays.

``kdgen pin-ports`` rewrites the user's own files, so formatting matters: comments, key order,
quoting, indentation, line endings and other documents of the file must survive (issue 3
item 3). Each row gives a file and the exact text expected back.
"""

from __future__ import annotations

import pytest
import yaml

from kdgen.model import ANNOTATION_ALLOCATED_PORTS
from kdgen.pinning import indentation, pin_ports

VALUE = '[{"domainID":"alice","namedPort":{"api":20000}}]'
PINNED = f"{ANNOTATION_ALLOCATED_PORTS}: '{VALUE}'"
HEAD = "apiVersion: kuscia.secretflow/v1alpha1\nkind: KusciaDeployment\n"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param(
            HEAD + "metadata:\n"
            "  name: kd   # the KD\n"
            "  labels: {a: b}\n"
            "# between\n"
            "spec:\n"
            "  parties:\n"
            "    - domainID: alice   # me\n"
            '      appImageRef: "img"\n'
            "  inputConfig: '{}'\n",
            HEAD + "metadata:\n"
            "  name: kd   # the KD\n"
            "  labels: {a: b}\n"
            "  annotations:\n"
            f"    {PINNED}\n"
            "# between\n"
            "spec:\n"
            "  parties:\n"
            "    - domainID: alice   # me\n"
            '      appImageRef: "img"\n'
            "  inputConfig: '{}'\n",
            id="comments-quotes-flow-and-indented-lists-kept",
        ),
        pytest.param(
            HEAD + "metadata:\n"
            "    name: kd\n"
            "spec:\n"
            "    parties:\n"
            "    -   domainID: alice\n"
            "        appImageRef: img\n",
            HEAD + "metadata:\n"
            "    name: kd\n"
            "    annotations:\n"
            f"        {PINNED}\n"
            "spec:\n"
            "    parties:\n"
            "    -   domainID: alice\n"
            "        appImageRef: img\n",
            id="four-space-indentation-kept",
        ),
        pytest.param(
            HEAD + "metadata:\n"
            "  annotations:\n"
            '    z: "1"\n'
            f"    {ANNOTATION_ALLOCATED_PORTS}: '[]'\n"
            "  name: kd\n"
            "spec: {}\n",
            HEAD + f'metadata:\n  annotations:\n    z: "1"\n    {PINNED}\n  name: kd\nspec: {{}}\n',
            id="existing-value-replaced-in-place",
        ),
        pytest.param(
            HEAD + "metadata:\n  name: kd\n  annotations:\nspec: {}\n",
            HEAD + f"metadata:\n  name: kd\n  annotations:\n    {PINNED}\nspec: {{}}\n",
            id="empty-annotations-filled",
        ),
        pytest.param(
            HEAD.replace("\n", "\r\n") + "metadata:\r\n  name: kd\r\nspec: {}\r\n",
            HEAD.replace("\n", "\r\n")
            + f"metadata:\r\n  name: kd\r\n  annotations:\r\n    {PINNED}\r\nspec: {{}}\r\n",
            id="crlf-line-endings-kept",
        ),
        pytest.param(
            "# head\n"
            "--- # the AppImage\n"
            "apiVersion: kuscia.secretflow/v1alpha1\n"
            "kind: AppImage\n"
            "metadata: {name: kd}\n"
            "...\n"
            "---\n" + HEAD + "metadata: {name: kd}\n"
            "spec: {}\n"
            "---\n"
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:   {name:   kd}\n",
            "# head\n"
            "--- # the AppImage\n"
            "apiVersion: kuscia.secretflow/v1alpha1\n"
            "kind: AppImage\n"
            "metadata: {name: kd}\n"
            "...\n"
            "---\n" + HEAD + f"metadata: {{name: kd, annotations: {{{PINNED}}}}}\n"
            "spec: {}\n"
            "---\n"
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:   {name:   kd}\n",
            id="only-the-kd-document-of-a-stream-changes",
        ),
    ],
)
def test_pin_ports(text: str, want: str) -> None:
    got = pin_ports(text, {"kd": VALUE})
    assert got == want
    assert pin_ports(got, {"kd": VALUE}) == got  # pinning twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            HEAD + f"metadata:\n  name: kd  # x\n  annotations:\n    {PINNED}\nspec: {{}}\n",
            id="already-pinned",
        ),
        pytest.param(HEAD + "metadata:\n  name: other  # x\nspec: {}\n", id="other-kd"),
        pytest.param(
            "apiVersion: kuscia.secretflow/v1alpha1\nkind: AppImage\nmetadata:\n  name: kd  # x\n",
            id="not-a-kd",
        ),
        pytest.param("key: [unclosed  # x\n", id="not-yaml"),
        pytest.param("# only a comment\n", id="no-document"),
    ],
)
def test_untouched_documents_keep_every_byte(text: str) -> None:
    assert pin_ports(text, {"kd": VALUE}) == text


def test_pinned_value_reads_back_exactly() -> None:
    """The annotation is Kuscia's JSON verbatim, however long, never folded."""
    value = (
        "[" + ",".join(f'{{"domainID":"d{i}","namedPort":{{"p":{i}}}}}' for i in range(60)) + "]"
    )
    text = pin_ports(HEAD + "metadata:\n  name: kd\nspec: {}\n", {"kd": value})
    assert yaml.safe_load(text)["metadata"]["annotations"][ANNOTATION_ALLOCATED_PORTS] == value
    assert len(text.splitlines()) == 7


def test_each_kd_of_a_file_gets_its_own_value() -> None:
    text = "---\n".join(
        HEAD + f"metadata:\n  name: {name}\nspec: {{}}\n" for name in ("a", "b", "c")
    )
    pinned = pin_ports(text, {"a": "[1]", "c": "[3]"})
    annotations = [
        (d["metadata"].get("annotations") or {}).get(ANNOTATION_ALLOCATED_PORTS)
        for d in yaml.safe_load_all(pinned)
    ]
    assert annotations == ["[1]", None, "[3]"]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param("a: 1\n", {"mapping": 2, "sequence": 2, "offset": 0}, id="default"),
        pytest.param("a:\n  b:\n  - c\n", {"mapping": 2, "sequence": 2, "offset": 0}, id="k8s"),
        pytest.param(
            "a:\n  b:\n    - c\n", {"mapping": 2, "sequence": 4, "offset": 2}, id="indented"
        ),
        pytest.param(
            "a:  # note\n    b:\n    -   c\n",
            {"mapping": 4, "sequence": 4, "offset": 0},
            id="four-with-comment",
        ),
    ],
)
def test_indentation(text: str, want: dict[str, int]) -> None:
    assert indentation(text) == want
