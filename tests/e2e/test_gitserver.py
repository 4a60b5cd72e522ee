"""The local smart-HTTP git server the GitOps tests serve kdgen's rendered tree from.

Checked with the real git client: ``ls-remote``, ``clone`` over protocol v0 (what go-git
speaks) and v2, a fetch after a revision that deletes a file, and refusals (unknown repository,
push). No cluster needed; it lives here because only the e2e tests use it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.gitserver import BRANCH, GitServer


def git(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False, timeout=60
    )
    if check and done.returncode != 0:  # say what git said, not only its exit status
        raise AssertionError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "served") as running:
        yield running


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_ls_remote_and_clone_see_each_revision(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("apps")
    assert url == f"http://127.0.0.1:{server.port}/apps.git"
    first = write(tmp_path / "v1", {"alice/a.yaml": "a: 1\n", "cross-domain/kd.yaml": "kd: 1\n"})
    sha1 = server.commit_folder("apps", first, "first")

    refs = git("ls-remote", url).stdout.split("\n")
    assert f"{sha1}\tHEAD" in refs
    assert f"{sha1}\trefs/heads/{BRANCH}" in refs

    clone = tmp_path / "clone"
    git("-c", "protocol.version=0", "clone", "--quiet", url, str(clone))
    assert (clone / "alice" / "a.yaml").read_text() == "a: 1\n"
    assert (clone / "cross-domain" / "kd.yaml").read_text() == "kd: 1\n"
    assert git("rev-parse", "HEAD", cwd=clone).stdout.strip() == sha1

    second = write(tmp_path / "v2", {"alice/a.yaml": "a: 2\n"})  # cross-domain/ removed
    sha2 = server.commit_folder("apps", second, "second")
    assert sha2 != sha1
    assert server.head("apps") == sha2
    git("-c", "protocol.version=2", "pull", "--quiet", "--ff-only", cwd=clone)
    assert git("rev-parse", "HEAD", cwd=clone).stdout.strip() == sha2
    assert (clone / "alice" / "a.yaml").read_text() == "a: 2\n"
    assert not (clone / "cross-domain").exists()
    assert git("rev-list", "--count", "HEAD", cwd=clone).stdout.strip() == "2"
    assert any("git-upload-pack" in line for line in server.requests)


def test_same_folders_give_the_same_commit_ids(tmp_path: Path) -> None:
    folder = write(tmp_path / "tree", {"x/y.yaml": "y: 1\n"})
    ids = []
    for run in ("one", "two"):
        with GitServer(tmp_path / run) as server:
            server.create_repo("apps")
            ids.append(server.commit_folder("apps", folder, "same"))
    assert ids[0] == ids[1]


def test_unknown_repository_and_push_are_refused(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("apps")
    server.commit_folder("apps", write(tmp_path / "v1", {"f": "1\n"}), "first")
    missing = git("ls-remote", f"{server.base_url}/nope.git", check=False)
    assert missing.returncode != 0
    assert "404" in missing.stderr or "not found" in missing.stderr

    clone = tmp_path / "clone"
    git("clone", "--quiet", url, str(clone))
    (clone / "f").write_text("2\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "local", cwd=clone)
    pushed = git("push", "origin", BRANCH, cwd=clone, check=False)
    assert pushed.returncode != 0
    assert server.head("apps") != git("rev-parse", "HEAD", cwd=clone).stdout.strip()


def test_stop_closes_the_port(tmp_path: Path) -> None:
    server = GitServer(tmp_path / "served").start()
    url = server.create_repo("apps")
    server.commit_folder("apps", write(tmp_path / "v1", {"f": "1\n"}), "first")
    assert git("ls-remote", url).returncode == 0
    server.stop()
    server.stop()  # idempotent
    assert git("ls-remote", url, check=False).returncode != 0
