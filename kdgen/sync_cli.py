"""``kdgen status-sync``: the command line of the status-sync job.

Imports only click and light kdgen modules at import time; the controller (and with it the
kubernetes and Prometheus clients) is imported inside the command, so ``kdgen generate`` does
not pay for it.

Exit codes: 0 when every KD synced (``--once``) or on a clean shutdown (``--watch``); 1 when a
KD could not be synced (a summary goes to stderr), on any ``KdgenError`` (one line on
stderr), or when the ``status-sync`` extra (the kubernetes and Prometheus clients) is not
installed (one line naming the ``pip install`` to run); 2 for usage errors. Run it as
``python -m kdgen.sync_cli`` as well.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import click

from kdgen.errors import KdgenError
from kdgen.model import KUSCIA_CROSS_DOMAIN

EXTRA_MISSING = (
    "kdgen status-sync needs the status-sync extra ({missing} is not installed): "
    "pip install 'kdgen[status-sync]'"
)
"""The one line printed (exit 1) when the cluster client is missing."""
EXTRA_MODULES = ("kubernetes", "prometheus_client", "urllib3", "orjson")
"""Top-level modules only the status-sync extra brings (an ImportError of one names the extra)."""


F = TypeVar("F", bound=Callable[..., Any])


def _seconds(flag: str, minimum: float, default: float, text: str) -> Callable[[F], F]:
    """A duration flag in seconds, at least ``minimum``."""
    option: Callable[[F], F] = click.option(
        flag, type=click.FloatRange(min=minimum), default=default, show_default=True, help=text
    )
    return option


@click.command("status-sync")
@click.option("--kubeconfig", metavar="PATH", help="kubeconfig file (default: like kubectl).")
@click.option("--context", metavar="NAME", help="kubeconfig context to use.")
@click.option(
    "--kd-namespace",
    default=KUSCIA_CROSS_DOMAIN,
    show_default=True,
    help="Namespace of the KusciaDeployments (and the owner_namespace label value).",
)
@click.option(
    "--partner-domain",
    "partner_domains",
    multiple=True,
    metavar="DOMAIN",
    help="A domain hosted by another cluster (repeatable); its party is not read here.",
)
@click.option(
    "--domain-kubeconfig",
    "domain_kubeconfigs",
    multiple=True,
    metavar="DOMAIN=PATH",
    help="Read DOMAIN's Deployments from the cluster of this kubeconfig (repeatable): a "
    "partner hosted by another cluster, so its party is observed too.",
)
@click.option(
    "--domain-context",
    "domain_contexts",
    multiple=True,
    metavar="DOMAIN=NAME",
    help="Read DOMAIN's Deployments through this context (of its --domain-kubeconfig, or of "
    "the main kubeconfig) (repeatable).",
)
@click.option(
    "--once/--watch",
    "once",
    default=True,
    show_default=True,
    help="One pass (for a CronJob), or watch and keep status current.",
)
@click.option("--dry-run", is_flag=True, help="Print the patches as JSON; write nothing.")
@click.option(
    "--prune",
    is_flag=True,
    help="Delete Services, ConfigMaps and Deployments labelled for a KD that no longer exists "
    "(never a GitOps tool's objects, nothing while no KD exists).",
)
@click.option(
    "--prune-gitops-managed",
    is_flag=True,
    help="With --prune, also delete objects that Argo CD or Flux manages (their tracking "
    "labels or annotation) or that have an owner reference; normally the GitOps tool prunes.",
)
@click.option(
    "--conflict-retries",
    type=click.IntRange(0, 100),
    default=5,
    show_default=True,
    help="Re-read and retry a KD this often when another writer changed it (409).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="KDs synced at the same time (status patches in flight).",
)
@click.option(
    "--metrics-addr",
    default="127.0.0.1:8080",
    show_default=True,
    help="host:port for /healthz, /readyz and /metrics in --watch mode; empty to disable.",
)
@click.option(
    "--leader-election/--no-leader-election",
    default=False,
    show_default=True,
    help="Hold a Lease so only one --watch replica writes.",
)
@click.option(
    "--lease-name", default="kdgen-status-sync", show_default=True, help="Name of the Lease."
)
@click.option(
    "--lease-namespace",
    default="",
    help="Namespace of the Lease (default: the pod's namespace, else 'default').",
)
@click.option("--identity", default="", help="Leader-election identity (default: host_random).")
@_seconds(
    "--lease-duration",
    1,
    15.0,
    "Seconds a Lease not renewed stays another replica's before it may be taken over.",
)
@_seconds(
    "--renew-deadline", 0.5, 10.0, "Seconds the leader keeps writing without a successful renewal."
)
@_seconds("--retry-period", 0.1, 2.0, "Seconds between tries to acquire or renew the Lease.")
@_seconds(
    "--resync-period",
    1,
    60.0,
    "Seconds between full recomputations in --watch mode (pod reasons change silently).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text, or as one JSON object per line.",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
def status_sync(**params: Any) -> None:
    """Write KusciaDeployment status from the live Deployments, as Kuscia's controller would.

    Reads every KusciaDeployment in --kd-namespace and the Deployments of its parties, and
    merge-patches the status subresource only where something changed.
    """
    once = bool(params["once"])
    _check_usage(params, once=once)
    _configure_logging(int(params["verbose"]), once=once, json_lines=params["log_format"] == "json")
    try:  # deferred: the kubernetes and Prometheus clients
        from kdgen.controller import client, leaderelection, reconcile, runner
    except ImportError as exc:
        raise _extra_missing(exc) from exc

    domain_kubeconfigs = _domain_pairs(params["domain_kubeconfigs"], "--domain-kubeconfig")
    domain_contexts = _domain_pairs(params["domain_contexts"], "--domain-context")
    remote = frozenset(domain_kubeconfigs) | frozenset(domain_contexts)
    options = reconcile.SyncOptions(
        kd_namespace=params["kd_namespace"],
        partner_domains=frozenset(params["partner_domains"]) - remote,
        remote_domains=remote,
        dry_run=bool(params["dry_run"]),
        prune=bool(params["prune"]),
        prune_gitops_managed=bool(params["prune_gitops_managed"]),
        conflict_retries=int(params["conflict_retries"]),
        workers=int(params["workers"]),
    )
    try:
        api = client.connect(kubeconfig=params["kubeconfig"], context=params["context"])
        if remote:
            from kdgen.controller.clusters import DomainClients

            domains = {
                domain: client.connect(
                    kubeconfig=domain_kubeconfigs.get(domain, params["kubeconfig"]),
                    context=domain_contexts.get(domain),
                )
                for domain in sorted(remote)
            }
            api = cast(Any, DomainClients(api, domains))
        if once:
            report = runner.run_once(api, options, out=sys.stdout)
        else:
            election = leaderelection.ElectionOptions(
                lease_name=params["lease_name"],
                lease_namespace=params["lease_namespace"]
                or leaderelection.default_lease_namespace(),
                identity=params["identity"] or leaderelection.default_identity(),
                lease_duration=float(params["lease_duration"]),
                renew_deadline=float(params["renew_deadline"]),
                retry_period=float(params["retry_period"]),
            )
            watch_options = runner.WatchOptions(
                metrics_addr=params["metrics_addr"],
                leader_election=bool(params["leader_election"]),
                election=election,
                resync_period=float(params["resync_period"]),
            )
            runner.run_watch(api, options, watch_options, out=sys.stdout)
            return
    except KdgenError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    for line in report.summary():
        click.echo(line, err=True)
    if not report.is_ok:
        sys.exit(1)


def _domain_pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    """Parse repeated ``DOMAIN=VALUE`` options."""
    pairs: dict[str, str] = {}
    for value in values:
        domain, sep, rest = value.partition("=")
        if not sep or not domain or not rest:
            raise click.UsageError(f"{flag} takes DOMAIN=VALUE, got {value!r}")
        if domain in pairs:
            raise click.UsageError(f"{flag} names domain {domain!r} twice")
        pairs[domain] = rest
    return pairs


def _extra_missing(exc: ImportError) -> Exception:
    """The one-line error for a missing status-sync extra; other import errors stay as they are."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRA_MODULES:
        return exc
    return click.ClickException(EXTRA_MISSING.format(missing=top))


def _check_usage(params: dict[str, Any], *, once: bool) -> None:
    if once and params["leader_election"]:
        raise click.UsageError("--leader-election needs --watch")
    if params["prune_gitops_managed"] and not params["prune"]:
        raise click.UsageError("--prune-gitops-managed needs --prune")
    if params["renew_deadline"] >= params["lease_duration"]:
        raise click.UsageError("--renew-deadline must be shorter than --lease-duration")
    if params["retry_period"] >= params["renew_deadline"]:
        raise click.UsageError("--retry-period must be shorter than --renew-deadline")


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON."""
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


def _configure_logging(verbose: int, *, once: bool, json_lines: bool = False) -> None:
    base = logging.WARNING if once else logging.INFO
    level = max(logging.DEBUG, base - 10 * verbose)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLines() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])
    if level > logging.DEBUG:
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    status_sync(prog_name="kdgen status-sync")
