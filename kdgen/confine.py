"""The one rule for paths a tool's configuration names: resolved, they stay inside the tool's root.

kustomize runs a plugin with the kustomization folder as working directory, kpt with the
package, Argo CD with the application folder inside a checked-out repository. Whoever writes
that folder's content (a KRM function config's ``spec.files``, a KD's inputs annotation, an
Application's ``KDGEN_INVENTORY``) must not make kdgen read a file outside it, the way
kustomize's load restrictor (``LoadRestrictionsRootOnly``) refuses files outside the
kustomization root. Every adapter passes its paths through ``confined_path`` (through
``read_sources(..., root=...)``), and nowhere else is the rule written.

The path is resolved with every symbolic link followed (``os.path.realpath``), so a link
inside the root that points out of it is refused as well; the root is resolved the same way.

Which root (``checkout_root``): the checkout the tool works in, that is the nearest folder
holding ``.git`` at or above the tool's working directory, or the working directory itself
when there is none. A GitOps repository routinely keeps AppImages and the Inventory beside,
not below, the kustomization that uses them (``examples/kustomize`` does), and everything in
the checkout is already readable by whoever writes it; what must never be read is the rest
of the machine: other checkouts on an Argo CD repo-server, credentials, ``/etc``.
"""

from __future__ import annotations

import os
from pathlib import Path

from kdgen.errors import Problem


def checkout_root(folder: Path) -> Path:
    """Return the nearest folder at or above ``folder`` that holds ``.git``, else ``folder``."""
    real = Path(os.path.realpath(folder))
    for candidate in (real, *real.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return real


class Escape(Exception):
    """A path resolves outside the root; ``problem`` says which parameter named it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def confined_path(root: Path, path: str, parameter: str) -> Path:
    """Return ``path`` resolved, if it is inside ``root``.

    ``path`` is relative to the working directory (where the tool runs kdgen) or absolute;
    ``root`` is that directory or one of its parents (Argo CD's repository root).

    Args:
        root: the folder the tool gave kdgen (kustomization, kpt package, Argo CD app or repo).
        path: the path as the configuration wrote it.
        parameter: the setting that named it, for the message (``spec.files[0]``).

    Raises:
        Escape: ``path`` is empty or resolves (symbolic links followed) outside ``root``.

    >>> try:
    ...     confined_path(Path("/srv/app"), "/srv/etc/passwd", "spec.files[0]")
    ... except Escape as err:
    ...     print(err.problem.field, "|", err.problem.message[:48])
    spec.files[0] | path '/srv/etc/passwd' is outside /srv/app (reso
    """
    real_root = Path(os.path.realpath(root))
    if not path:
        raise Escape(Problem("path is empty", field=parameter))
    resolved = Path(os.path.realpath(path))
    if resolved != real_root and real_root not in resolved.parents:
        raise Escape(
            Problem(
                f"path {path!r} is outside {real_root} (resolved to {resolved}); kdgen reads "
                "only files of the checkout the tool runs it in (of the folder, outside a "
                "git checkout)",
                field=parameter,
            )
        )
    return resolved
