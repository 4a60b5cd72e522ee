"""Compose the pure stages: inputs in, sorted manifests (or every problem) out.

``expand`` runs validate -> plan -> ports -> manifests for every KD, collects the problems of
all stages and all KDs, and raises once with all of them, so a user fixes everything in one
round. Pure: no I/O, no clock; the same inputs always give the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from kdgen import limits
from kdgen.appconfig import cluster_define, cluster_define_parties
from kdgen.bounds import output_problem, output_size
from kdgen.configrender import render_config_templates
from kdgen.errors import Problem, ValidationError
from kdgen.load import Document, Inputs
from kdgen.manifests import PartyContext, build_party_objects, kuscia_env_values
from kdgen.model import (
    LABEL_KUSCIA_DEPLOYMENT_NAME,
    Inventory,
    Manifest,
    Options,
    PortMode,
    Profile,
    Reason,
)
from kdgen.plan import KdPlan, plan_kusciadeployment
from kdgen.ports import PortAssignment, assign_ports, party_numbers
from kdgen.render import sort_manifests
from kdgen.sourceobjects import source_objects
from kdgen.validate import validate

NO_KUSCIA_DEPLOYMENT = "no KusciaDeployment among the inputs: nothing to generate"

_CLASH_REASONS = {
    "Service": Reason.CREATE_SERVICE_FAILED,
    "ConfigMap": Reason.CREATE_CONFIGMAP_FAILED,
    "Deployment": Reason.CREATE_DEPLOYMENT_FAILED,
}


@dataclass(frozen=True, slots=True)
class Expansion:
    """The result of a successful run.

    Attributes:
        manifests: every object made from a KD, sorted by namespace, kind and name.
        warnings: problems worth reporting that did not stop the run.
        allocated_ports: per KD name, its allocated-ports annotation (``--ports allocated``).
        kusciadeployments: the KD documents the manifests came from, in input order.
        sources: the input AppImages and KDs as emitted (``sourceobjects.py``), when
            ``Options.include_sources``; otherwise empty.
    """

    manifests: tuple[Manifest, ...]
    warnings: tuple[Problem, ...] = ()
    allocated_ports: Mapping[str, str] = field(default_factory=dict)
    kusciadeployments: tuple[Document, ...] = ()
    sources: tuple[Manifest, ...] = ()

    @property
    def objects(self) -> tuple[Manifest, ...]:
        """Everything to write, in output order: the sources, then the objects made from them."""
        return tuple(sort_manifests([*self.sources, *self.manifests]))


def expand(inputs: Inputs, options: Options | None = None) -> Expansion:
    """Expand every KusciaDeployment of ``inputs`` into its per-domain objects.

    Raises:
        ValidationError: with every error (and warning) found, if there is any error.
    """
    options = options or Options()
    checked = validate(inputs)
    problems = list(checked.problems)
    if not checked.kusciadeployments and not problems:
        # Not an error: a GitOps folder may hold only AppImages for a while.
        problems.append(Problem(NO_KUSCIA_DEPLOYMENT, severity="warning"))
    plans: list[KdPlan] = []
    for kd in checked.kusciadeployments:
        plan, found = plan_kusciadeployment(
            kd, checked.app_images, checked.inventory, checked.invalid_app_images
        )
        problems.extend(found)
        if plan is not None:
            plans.append(plan)
    assignment = assign_ports(plans, checked.inventory, options.ports)
    problems.extend(assignment.problems)
    failed = {(p.source, p.doc_index) for p in assignment.problems if p.severity == "error"}
    manifests: list[Manifest] = []
    budget, count = limits.MAX_OUTPUT_BYTES, limits.MAX_OBJECTS
    for plan in plans:
        if (plan.kd.source, plan.kd.index) in failed:
            continue
        count -= sum(len(party.service_names) + 2 for party in plan.self_parties)
        if count < 0:  # checked before building: the objects themselves are the cost
            problems.append(output_problem(plan.kd))
            break
        objects = _kd_objects(plan, assignment, checked.inventory, options, problems)
        budget -= output_size(objects)
        if budget < 0:
            problems.append(output_problem(plan.kd))
            break
        manifests.extend(objects)
    problems.extend(_clashes(plans, manifests))
    problems = list(dict.fromkeys(problems))
    if any(p.severity == "error" for p in problems):
        raise ValidationError(problems)
    annotations = assignment.annotations if options.ports is PortMode.ALLOCATED else {}
    sources = (
        source_objects(inputs.app_images, inputs.kusciadeployments, annotations)
        if options.include_sources
        else []
    )
    return Expansion(
        manifests=tuple(sort_manifests(manifests)),
        warnings=tuple(problems),
        allocated_ports=annotations,
        kusciadeployments=tuple(p.kd for p in plans),
        sources=tuple(sources),
    )


def _kd_objects(
    plan: KdPlan,
    assignment: PortAssignment,
    inventory: Inventory,
    options: Options,
    problems: list[Problem],
) -> list[Manifest]:
    parties = cluster_define_parties(plan, assignment, options.profile)
    objects: list[Manifest] = []
    for party in plan.self_parties:
        ctx = PartyContext(
            kd=plan,
            party=party,
            numbers=party_numbers(assignment, plan, party),
            cluster_define=cluster_define(parties, party),
            profile=options.profile,
            domain=inventory.domain(party.domain_id),
            config_data={},
        )
        config_data = _config_data(ctx, inventory, problems)
        objects.extend(build_party_objects(replace(ctx, config_data=config_data)))
    return objects


def _config_data(
    ctx: PartyContext, inventory: Inventory, problems: list[Problem]
) -> dict[str, str]:
    """Return the ConfigMap data: raw templates, or (plain profile) rendered ones.

    Rendering sees what Kuscia's agent would: the union of the containers' env (the first
    value of a repeated name wins, as in its RunK mode), over the inventory's
    ``templateValues`` for keys that Kuscia's config manager would answer.
    """
    image = ctx.party.app_image
    templates: dict[str, str] = dict(image.body["spec"].get("configTemplates") or {})
    if ctx.profile is not Profile.PLAIN or not templates:
        return templates
    values = dict(inventory.template_values)
    env: dict[str, str] = {}
    for name, value in _party_env(ctx):
        env.setdefault(name.upper(), value)
    values.update(env)
    try:
        rendered, warnings = render_config_templates(templates, values)
    except ValidationError as err:
        problems.extend(_at(image, err.problems))
        return {}
    problems.extend(_at(image, warnings))
    return rendered


def _party_env(ctx: PartyContext) -> Iterable[tuple[str, str]]:
    kuscia = list(kuscia_env_values(ctx))
    for container in ctx.party.pod_spec.get("containers") or []:
        for item in container.get("env") or []:
            if "value" in item:
                yield item["name"], str(item["value"])
        yield from kuscia


def _at(document: Document, problems: Iterable[Problem]) -> list[Problem]:
    return [
        replace(p, source=document.source, doc_index=document.index, resource=document.resource)
        for p in problems
    ]


def _clashes(plans: Iterable[KdPlan], manifests: Iterable[Manifest]) -> list[Problem]:
    """Report objects two KDs would both own: Kuscia's 'already exist' failures."""
    documents = {plan.name: plan.kd for plan in plans}
    owners: dict[tuple[str, str, str], str] = {}
    problems = []
    for obj in manifests:
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        owner = meta["labels"][LABEL_KUSCIA_DEPLOYMENT_NAME]
        earlier = owners.setdefault(key, owner)
        if earlier != owner:
            kind = obj["kind"].lower()
            problems.append(
                documents[owner].problem(
                    "metadata.name",
                    f"domain {key[1]} {kind} {key[2]} already exist, please ensure that the "
                    f"{kind} name can't be duplicated (KusciaDeployment {earlier} makes it too)",
                    reason=_CLASH_REASONS[obj["kind"]].value,
                )
            )
    return problems
