"""Compose the pure stages: inputs in, sorted manifests (or every problem) out.

``expand`` runs validate -> plan -> ports -> manifests for every KD, collects the problems of
all stages and all KDs, and raises once with all of them, so a user fixes everything in one
round. Pure: no I/O, no clock; the same inputs always give the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from kdgen import limits
from kdgen.appconfig import ClusterDefine, cluster_define_parties
from kdgen.bounds import (
    kd_bytes_problem,
    kd_objects_problem,
    output_size,
    party_output_bytes,
    run_bytes_problem,
    run_objects_problem,
)
from kdgen.configrender import render_config_templates
from kdgen.errors import Problem, ValidationError
from kdgen.load import Document, Inputs
from kdgen.manifests import (
    PartyContext,
    build_configmap,
    build_deployment,
    build_service,
    kuscia_env_values,
)
from kdgen.model import (
    Inventory,
    Manifest,
    Options,
    PortMode,
    Profile,
    Reason,
)
from kdgen.plan import KdPlan, PartyPlan, plan_kusciadeployment
from kdgen.ports import PortAssignment, assign_ports, party_numbers
from kdgen.render import KIND_RANK, sort_manifests
from kdgen.sourceobjects import source_objects
from kdgen.validate import validate

NO_KUSCIA_DEPLOYMENT = "no KusciaDeployment among the inputs: nothing to generate"

_CLASH_REASONS = {
    "Service": Reason.CREATE_SERVICE_FAILED,
    "ConfigMap": Reason.CREATE_CONFIGMAP_FAILED,
    "Deployment": Reason.CREATE_DEPLOYMENT_FAILED,
}


_ObjectKey = tuple[str, int, str, str, int, PartyContext, int]
"""Where an object goes and how to make it: ``(namespace, kind rank, kind, name, plan index,
the party's context, port index or -1)``; the first four are its place in the output (as in
``render.sort_key``)."""


@dataclass(frozen=True, slots=True)
class Expansion:
    """The result of a successful run: every problem is known, the objects are not built yet.

    ``iter_objects`` builds them one at a time in output order, so a stream can be written
    without holding them; ``objects`` and ``manifests`` build them all at once.

    Attributes:
        warnings: problems worth reporting that did not stop the run.
        allocated_ports: per KD name, its allocated-ports annotation (``--ports allocated``).
        kusciadeployments: the KD documents the manifests come from, in input order.
        sources: the input AppImages and KDs as emitted (``sourceobjects.py``), in output
            order, when ``Options.include_sources``; otherwise empty.
    """

    warnings: tuple[Problem, ...] = ()
    allocated_ports: Mapping[str, str] = field(default_factory=dict)
    kusciadeployments: tuple[Document, ...] = ()
    sources: tuple[Manifest, ...] = ()
    _build: _Builder | None = None

    @property
    def count(self) -> int:
        """How many objects ``iter_objects`` yields, without building them."""
        return len(self.sources) + (len(self._build.order) if self._build else 0)

    def iter_manifests(self) -> Iterator[Manifest]:
        """Build and yield every object made from a KD, sorted by namespace, kind and name."""
        return iter(()) if self._build is None else self._build.objects()

    def iter_objects(self) -> Iterator[Manifest]:
        """Yield everything to write, in output order: the sources, then the objects."""
        yield from self.sources
        yield from self.iter_manifests()

    @property
    def manifests(self) -> tuple[Manifest, ...]:
        """Every object made from a KD, sorted by namespace, kind and name (built now)."""
        return tuple(self.iter_manifests())

    @property
    def objects(self) -> tuple[Manifest, ...]:
        """Everything to write, in output order (built now)."""
        return tuple(self.iter_objects())


def expand(inputs: Inputs, options: Options | None = None) -> Expansion:
    """Check every KusciaDeployment of ``inputs``; return how to build its per-domain objects.

    Everything that can go wrong is found here, before any object is built: schemas and
    Kuscia's rules, plans, port numbers, the per-KD and per-run bounds (from the plans),
    objects two KDs would both own (from their names), and, for the ``plain`` profile, the
    config templates (rendered here and again when built). Building cannot fail after it.

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
    build = _Builder(assignment, checked.inventory, options)
    objects, size = 0, 0
    sizes = _Sizes()
    for plan in plans:
        if (plan.kd.source, plan.kd.index) in failed:
            continue
        keys, kd_size, define = build.check(plan, sizes, problems)
        if len(keys) > limits.MAX_KD_OBJECTS:
            problems.append(kd_objects_problem(plan.kd, len(keys)))
            continue
        if kd_size > limits.MAX_KD_OUTPUT_BYTES:
            problems.append(kd_bytes_problem(plan.kd, kd_size))
            continue
        objects, size = objects + len(keys), size + kd_size
        if objects > limits.MAX_OBJECTS:
            problems.append(run_objects_problem(plan.kd))
            break
        if size > limits.MAX_OUTPUT_BYTES:
            problems.append(run_bytes_problem(plan.kd))
            break
        build.add(plan, keys, define)
    problems.extend(_clashes(build))
    problems = list(dict.fromkeys(problems))
    if any(p.severity == "error" for p in problems):
        raise ValidationError(problems)
    build.order.sort(key=lambda key: key[:4])
    annotations = assignment.annotations if options.ports is PortMode.ALLOCATED else {}
    sources = (
        source_objects(inputs.app_images, inputs.kusciadeployments, annotations)
        if options.include_sources
        else []
    )
    return Expansion(
        warnings=tuple(problems),
        allocated_ports=annotations,
        kusciadeployments=tuple(p.kd for p in plans),
        sources=tuple(sort_manifests(sources)),
        _build=build,
    )


class _Sizes:
    """Sizes of input documents and parts, each measured once per run (``bounds.output_size``)."""

    def __init__(self) -> None:
        self._sizes: dict[int, tuple[object, int]] = {}

    def of(self, value: object) -> int:
        found = self._sizes.get(id(value))
        if found is None or found[0] is not value:
            found = (value, output_size([value]))
            self._sizes[id(value)] = found
        return found[1]


class _Builder:
    """The facts kept between checking a run and building its objects: plans and keys.

    Holds per KD its plan and its CLUSTER_DEFINE's shared part, per self party what its
    builders share (a ``PartyContext`` without the CLUSTER_DEFINE text or ConfigMap data), and
    one key per object, never the objects: ``objects`` builds each from its key, in the order
    of the sorted keys.
    """

    def __init__(self, assignment: PortAssignment, inventory: Inventory, options: Options):
        self.assignment = assignment
        self.inventory = inventory
        self.options = options
        self.plans: list[KdPlan] = []
        self.defines: list[ClusterDefine] = []
        self.order: list[_ObjectKey] = []

    def check(
        self, plan: KdPlan, sizes: _Sizes, problems: list[Problem]
    ) -> tuple[list[_ObjectKey], int, ClusterDefine]:
        """Return ``plan``'s object keys, about how many bytes they take, its CLUSTER_DEFINE.

        For the ``plain`` profile this renders the config templates, adding their problems.
        """
        index = len(self.plans)
        profile = self.options.profile
        define = ClusterDefine.of(cluster_define_parties(plan, self.assignment, profile))
        keys: list[_ObjectKey] = []
        size = 0
        party_entries = plan.kd.body["spec"]["parties"]
        for party in plan.self_parties:
            namespace = party.domain_id
            ctx = PartyContext(
                kd=plan,
                party=party,
                numbers=party_numbers(self.assignment, plan, party),
                cluster_define="",
                profile=profile,
                domain=self.inventory.domain(namespace),
                config_data={},
            )
            before = len(keys)
            for number, port in enumerate(party.ports):
                if port.is_serviced:
                    name = party.service_names[port.name]
                    keys.append((namespace, _SERVICE, "Service", name, index, ctx, number))
            config = _templates(party)
            config_size = sum(len(k) + len(v) for k, v in config.items())
            if self._renders(party):
                full = self._full(ctx, define)
                bound = _rendered_bound(full, self.inventory, config)
                # Rendered only while it is bounded: one party's result by what a KD may
                # write, and the KD's total by stopping once it has passed that.
                limit = limits.MAX_KD_OUTPUT_BYTES
                if size <= limit and bound <= limit:
                    config = _config_data(full, self.inventory, problems)
                    config_size = sum(len(k) + len(v) for k, v in config.items())
                else:  # the KD is refused: its bound stands in for the rendered size
                    config_size = bound
            if config:
                name = party.configmap_name
                keys.append((namespace, _CONFIGMAP, "ConfigMap", name, index, ctx, -1))
            name = party.deploy_name
            keys.append((namespace, _DEPLOYMENT, "Deployment", name, index, ctx, -1))
            size += party_output_bytes(
                objects=len(keys) - before,
                containers=len(party.pod_spec.get("containers") or []),
                ports=len(party.ports),
                cluster_define=define.size(define.index(party)),
                input_config=len(plan.input_config),
                pod_spec=sizes.of(party.app_image.body) + sizes.of(party_entries[party.index]),
                config=config_size,
            )
        return keys, size, define

    def add(self, plan: KdPlan, keys: list[_ObjectKey], define: ClusterDefine) -> None:
        """Keep ``plan`` (just checked), its CLUSTER_DEFINE and its object keys for building."""
        self.plans.append(plan)
        self.defines.append(define)
        self.order.extend(keys)

    def _renders(self, party: PartyPlan) -> bool:
        return self.options.profile is Profile.PLAIN and bool(_templates(party))

    @staticmethod
    def _full(
        ctx: PartyContext, define: ClusterDefine, config: Mapping[str, str] | None = None
    ) -> PartyContext:
        return PartyContext(
            kd=ctx.kd,
            party=ctx.party,
            numbers=ctx.numbers,
            cluster_define=define.for_party(ctx.party),
            profile=ctx.profile,
            domain=ctx.domain,
            config_data=config or {},
        )

    def objects(self) -> Iterator[Manifest]:
        """Build and yield every object, in the order of ``self.order``."""
        for _, _, kind, _, index, ctx, port_index in self.order:
            if kind == "Service":
                yield build_service(ctx, ctx.party.ports[port_index])
                continue
            full = self._full(ctx, self.defines[index])
            if kind == "ConfigMap":
                # The plain profile renders again: ``check`` reported the problems and the
                # warnings, and rendering is deterministic.
                config = (
                    _config_data(full, self.inventory, [])
                    if self._renders(ctx.party)
                    else _templates(ctx.party)
                )
                yield build_configmap(self._full(ctx, self.defines[index], config))
            else:
                yield build_deployment(full)


_CONFIGMAP, _SERVICE, _DEPLOYMENT = (
    KIND_RANK["ConfigMap"],
    KIND_RANK["Service"],
    KIND_RANK["Deployment"],
)


def _templates(party: PartyPlan) -> dict[str, str]:
    """The AppImage's config templates, raw (the ``kuscia`` profile's ConfigMap data)."""
    return dict(party.app_image.body["spec"].get("configTemplates") or {})


def _config_data(
    ctx: PartyContext, inventory: Inventory, problems: list[Problem]
) -> dict[str, str]:
    """Return the ``plain`` profile's ConfigMap data: the config templates rendered.

    Rendering sees what Kuscia's agent would: the union of the containers' env (the first
    value of a repeated name wins, as in its RunK mode), over the inventory's
    ``templateValues`` for keys that Kuscia's config manager would answer.
    """
    image = ctx.party.app_image
    templates = _templates(ctx.party)
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


def _rendered_bound(ctx: PartyContext, inventory: Inventory, templates: Mapping[str, str]) -> int:
    """Return the most bytes the rendered templates can take, without rendering them.

    Each ``{{`` may become any value, quoted (Go's ``strconv.Quote`` writes a character as at
    most 10) or, through ``{{{.PATH}}}``, marshalled as JSON (at most 6 per character).
    """
    values = [*inventory.template_values.values(), *(value for _, value in _party_env(ctx))]
    longest = max((len(value) for value in values), default=0)
    return sum(
        len(key) + len(text) + text.count("{{") * (10 * longest + 2)
        for key, text in templates.items()
    )


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


def _clashes(build: _Builder) -> list[Problem]:
    """Report objects two KDs would both own: Kuscia's 'already exist' failures."""
    owners: dict[tuple[str, str, str], int] = {}
    problems = []
    for namespace, _, kind, name, index, _, _ in build.order:
        first = owners.setdefault((kind, namespace, name), index)
        if first == index:
            continue
        plan, earlier = build.plans[index], build.plans[first]
        if earlier.name != plan.name:
            lower = kind.lower()
            problems.append(
                plan.kd.problem(
                    "metadata.name",
                    f"domain {namespace} {lower} {name} already exist, please ensure that the "
                    f"{lower} name can't be duplicated (KusciaDeployment {earlier.name} makes it "
                    "too)",
                    reason=_CLASH_REASONS[kind].value,
                )
            )
    return problems
