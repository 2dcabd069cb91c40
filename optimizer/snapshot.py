"""The frozen picture of one window: which nodes, which pods hold capacity, which agents to place.

Built once from an Inventory; everything downstream reads it and nothing writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from models import Inventory, Node, Pod, PodDisruptionBudget, PriorityClass, ResourceQuota
from models.agentplace import PricingTable, TokenBudget
from models.podgroup import PodGroup
from models.policy import Namespace, is_pod_quota_resource
from models.selectors import parse_int64

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# kube's built-in classes (pkg/apis/scheduling/types.go)
SYSTEM_PRIORITIES = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}


@dataclass(frozen=True)
class Snapshot:
    nodes: tuple[Node, ...]
    running: tuple[Pod, ...]
    pending: tuple[Pod, ...]
    priority: tuple[int, ...]  # resolved priority per pending agent
    priority_classes: tuple[PriorityClass, ...] = ()
    quotas: tuple[ResourceQuota, ...] = ()  # by namespace, then name
    warnings: tuple[str, ...] = ()
    node_pos: dict[str, int] = field(default_factory=dict, compare=False)
    agent_pos: dict[str, int] = field(default_factory=dict, compare=False)
    running_on: tuple[tuple[int, ...], ...] = ()  # running pod indices per node
    namespaces: tuple[Namespace, ...] = ()  # as given; see namespace_labels
    pricing: PricingTable | None = None
    token_budgets: tuple[TokenBudget, ...] = ()  # by namespace, then name
    pod_groups: tuple[PodGroup, ...] = ()  # Coscheduling gangs, by namespace, then name
    pdbs: tuple[PodDisruptionBudget, ...] = ()  # by namespace, then name

    def namespace_labels(self, name: str) -> dict[str, str]:
        """A namespace's labels, for namespaceSelector: the given object's, and always
        kubernetes.io/metadata.name=<name> (the API server sets it on every namespace), which
        is all a namespace not given has."""
        given = next((ns.metadata.labels for ns in self.namespaces if ns.name == name), {})
        return {**given, NAMESPACE_NAME_LABEL: name}

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)


def resolve_priority(pod: Pod, classes: dict[str, PriorityClass], default: int) -> int:
    """Admission's Priority plugin: spec.priority wins, then the class, then the global default."""
    if pod.spec.priority is not None:
        return pod.spec.priority
    name = pod.spec.priority_class_name
    if name:
        if name in classes:
            return classes[name].value
        if name in SYSTEM_PRIORITIES:
            return SYSTEM_PRIORITIES[name]
    return default


def gt_lt_warnings(pod: Pod) -> list[str]:
    """kube admits a Gt/Lt bound that is not an integer and then silently matches no node with
    that term; we place the same way but say so."""
    aff = pod.spec.affinity.node_affinity if pod.spec.affinity else None
    required = aff.required_during_scheduling_ignored_during_execution if aff else None
    out = []
    for t, term in enumerate(required.node_selector_terms if required else []):
        for e, req in enumerate(term.match_expressions):
            if req.operator in ("Gt", "Lt") and parse_int64(req.values[0]) is None:
                out.append(
                    f"Pod {pod.ref}: spec.affinity.nodeAffinity.requiredDuringScheduling"
                    f"IgnoredDuringExecution.nodeSelectorTerms[{t}].matchExpressions[{e}].values[0]: "
                    f"{req.values[0]!r} is not an integer, so this term matches no node "
                    "(kube-scheduler does the same)")
    return out


def quota_warnings(quotas: tuple[ResourceQuota, ...]) -> list[str]:
    """A quota the quota controller has not synced yet (no status.used for a hard resource):
    kube's admission would refuse every pod it covers ("status unknown for quota"); we count
    the usage ourselves from the input instead, and say so."""
    out = []
    for q in quotas:
        missing = sorted(r for r in set(q.spec.hard) - set(q.status.used)
                         if is_pod_quota_resource(r))
        if missing:
            out.append(
                f"ResourceQuota {q.ref}: status.used has no {', '.join(missing)}: usage computed "
                "from the bound and admitted pods of the namespace in the input (pods bound to "
                "unknown nodes and finished pods are not counted)")
    return out


def _pricing(inv: Inventory, warnings: list[str]) -> PricingTable | None:
    """One table prices the window; with several, the first by name wins and we say so."""
    tables = sorted(inv.pricing, key=lambda t: t.name)
    if len(tables) > 1:
        warnings.append(f"{len(tables)} PricingTables given: using {tables[0].name}")
    return tables[0] if tables else None


def resolve_priorities(pods: Iterable[Pod], priority_classes: Iterable[PriorityClass]
                       ) -> dict[str, int]:
    """Each pod's resolved priority by ref (see resolve_priority)."""
    classes = {pc.name: pc for pc in priority_classes}
    default = next((pc.value for pc in classes.values() if pc.global_default), 0)
    return {p.ref: resolve_priority(p, classes, default) for p in pods}


def build_snapshot(inv: Inventory) -> Snapshot:
    nodes = tuple(sorted(inv.nodes, key=lambda n: n.name))
    node_pos = {n.name: i for i, n in enumerate(nodes)}
    warnings = list(inv.warnings)
    running: list[Pod] = []
    for pod in inv.running:
        if pod.spec.node_name in node_pos:
            running.append(pod)
        else:
            warnings.append(
                f"Pod {pod.ref}: spec.nodeName {pod.spec.node_name!r} is not among the "
                "given nodes; its usage is not counted"
            )
    for pod in inv.pending:
        warnings.extend(gt_lt_warnings(pod))
    quotas = tuple(sorted(inv.quotas, key=lambda q: (q.namespace, q.name)))
    warnings.extend(quota_warnings(quotas))
    # kube's queue order (PrioritySort): priority, then creation time, then name for determinism
    prio = resolve_priorities(inv.pending, inv.priority_classes)
    pending = tuple(sorted(
        inv.pending,
        key=lambda p: (-prio[p.ref], p.metadata.creation_timestamp is None,
                       p.metadata.creation_timestamp.timestamp()
                       if p.metadata.creation_timestamp else 0.0, p.ref),
    ))
    on: list[list[int]] = [[] for _ in nodes]
    for i, pod in enumerate(running):
        on[node_pos[pod.spec.node_name or ""]].append(i)
    pricing = _pricing(inv, warnings)
    return Snapshot(
        nodes=nodes,
        running=tuple(running),
        pending=pending,
        priority=tuple(prio[p.ref] for p in pending),
        priority_classes=tuple(inv.priority_classes),
        quotas=quotas,
        warnings=tuple(warnings),
        node_pos=node_pos,
        agent_pos={p.ref: i for i, p in enumerate(pending)},
        running_on=tuple(tuple(x) for x in on),
        namespaces=tuple(sorted(inv.namespaces, key=lambda ns: ns.name)),
        pricing=pricing,
        token_budgets=tuple(sorted(inv.token_budgets, key=lambda b: (b.namespace, b.name))),
        pod_groups=tuple(sorted(inv.pod_groups, key=lambda g: (g.namespace, g.name))),
        pdbs=tuple(sorted(inv.pdbs, key=lambda d: (d.namespace, d.name))),
    )


def without_running(snap: Snapshot, refs: Iterable[str]) -> Snapshot:
    """The snapshot after evicting running pods `refs`: what the plan's agents bind against."""
    gone = set(refs)
    if not gone:
        return snap
    running = tuple(p for p in snap.running if p.ref not in gone)
    on: list[list[int]] = [[] for _ in snap.nodes]
    for i, pod in enumerate(running):
        on[snap.node_pos[pod.spec.node_name or ""]].append(i)
    return replace(snap, running=running, running_on=tuple(tuple(x) for x in on))
