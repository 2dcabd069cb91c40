"""What-if scenarios: a list of changes to a loaded cluster, and the pure function applying them.

YAML shape (`apiVersion: agentplace.io/v1alpha1`, `kind: Scenario`; unknown fields are errors,
since a misspelt selector that silently matched every node would answer the wrong question):

    metadata: {name: lose-zone-b, labels: {axis: value}}   # labels become sweep table columns
    description: free text
    solve: {profile: cost, weights: {cost: 2}, strategy: MostAllocated, timeLimit: 5, seed: 1,
            termGap: 0.02, preemption: false}
    changes:                       # applied in order; each item has exactly one key
    - removeNodes: {names: [n1], selector: {matchLabels: {topology.kubernetes.io/zone: b}}}
    - drainNodes:  {names: [n2]}   # cordon + evict (PodDisruptionBudgets may block evictions)
    - addNodes:    {copyOf: n3, count: 4, namePrefix: extra, labels: {k: v}}
                   # or like: {selector: ...} (the first selected node by name), or template: <Node>
    - setQuota:    {namespace: research, name: agent-quota, hard: {requests.cpu: "200"}}
    - setTokenBudget: {namespace: research, name: research-hourly, tokens: 20M, dollars: "30"}
    - setPriority: {agents: {namespace: research, names: [a], selector: {...}}, priority: 5000}
                   # or priorityClassName: agent-critical
    - addAgents:   {copyOf: research/web-researcher-x, count: 20, namePrefix: burst}
                   # or like: {namespace: research, selector: {...}} (the first selected pod by
                   # name: stable when generated names change), or template: <Pod> (with
                   # namespace: when the template names none)

Semantics of losing a node (`removeNodes`, and `drainNodes` for the pods it evicts): a pod with a
controller (ReplicaSet, StatefulSet, Job, ...) is recreated pending and must be placed again; it
keeps its uid, so ResourceQuota treats it as already admitted (the replacement's charge replaces
the lost pod's). A DaemonSet pod goes with its node (drain leaves it running, as
`kubectl drain --ignore-daemonsets`). A pod without a controller is lost: nothing recreates it.
`drainNodes` evicts through PodDisruptionBudgets: an eviction that would exceed a matching
budget's `status.disruptionsAllowed` is refused and the pod stays on the cordoned node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from models.errors import InputError, InputErrors, from_validation_error
from models.inventory import Inventory
from models.meta import ObjectMeta
from models.node import Node, Taint
from models.pod import Pod, PodStatus
from models.policy import PodDisruptionBudget
from models.quantity import QuantityField
from models.selectors import LabelSelector

UNSCHEDULABLE_TAINT = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")
HOSTNAME = "kubernetes.io/hostname"


class _Strict(BaseModel):
    """camelCase like kube, but unknown fields are errors (a scenario is written by hand)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


class Selector(LabelSelector):
    """A kube LabelSelector that rejects unknown keys (`matchLabel:` must not match all)."""

    model_config = ConfigDict(extra="forbid")


def selects(sel: LabelSelector | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelectorAsSelector(sel).Matches(labels); None selects nothing here."""
    return sel is not None and sel.matches(labels)


class NodeSet(_Strict):
    names: list[str] = Field(default_factory=list)
    selector: Selector | None = None

    @model_validator(mode="after")
    def _some(self) -> NodeSet:
        if not self.names and self.selector is None:
            raise ValueError("names: Required value: give names, a selector or both")
        return self


class AgentSet(_Strict):
    """Pending agents: in `namespace` (all when absent), by name and/or label selector."""

    namespace: str | None = None
    names: list[str] = Field(default_factory=list)  # `name` (in namespace) or `ns/name`
    selector: Selector | None = None


class _Copies(_Strict):
    """A change that adds copies of one source: `copyOf`, `like` or a `template`."""

    @field_validator("template", mode="before", check_fields=False)
    @classmethod
    def _named(cls, v: Any) -> Any:
        # a template needs no name: the copies are named from namePrefix
        if isinstance(v, dict):
            meta = v.get("metadata") if isinstance(v.get("metadata"), dict) else {}
            return {**v, "metadata": {"name": "template", **meta}}
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Any:
        # each subclass types `like` and `template` for what it copies
        if sum(getattr(self, f) is not None for f in ("copy_of", "like", "template")) != 1:
            raise ValueError("copyOf: Invalid value: give exactly one of copyOf, like and template")
        return self


class AddNodes(_Copies):
    copy_of: str | None = None
    like: NodeSet | None = None  # copies the first selected node (by name)
    template: Node | None = None
    count: int = Field(ge=1, le=100_000)
    name_prefix: str | None = Field(default=None, min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


class AddAgents(_Copies):
    copy_of: str | None = None  # `ns/name` of a pod in the input
    like: AgentSet | None = None  # copies the first selected pod (by ns/name), pending or not
    template: Pod | None = None
    namespace: str | None = None
    count: int = Field(ge=1, le=1_000_000)
    name_prefix: str | None = Field(default=None, min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _namespaced_copy(self) -> AddAgents:
        if self.copy_of is not None and "/" not in self.copy_of:
            raise ValueError(f"copyOf: Invalid value: {self.copy_of!r}: expected namespace/name")
        return self


class SetQuota(_Strict):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    hard: dict[str, QuantityField] = Field(min_length=1)  # merged into spec.hard


class SetTokenBudget(_Strict):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    tokens: QuantityField | None = None
    dollars: Decimal | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some(self) -> SetTokenBudget:
        if self.tokens is None and self.dollars is None:
            raise ValueError("tokens: Required value: give tokens, dollars or both")
        if self.tokens is not None and (self.tokens.value < 0 or self.tokens.value.denominator != 1):
            raise ValueError(f"tokens: Invalid value: {self.tokens.text!r}: must be a whole "
                             "number of tokens >= 0")
        return self


class SetPriority(_Strict):
    agents: AgentSet
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    priority_class_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> SetPriority:
        if (self.priority is None) == (self.priority_class_name is None):
            raise ValueError("priority: Invalid value: give exactly one of priority and "
                             "priorityClassName")
        return self


CHANGE_KINDS = ("removeNodes", "drainNodes", "addNodes", "setQuota", "setTokenBudget",
                "setPriority", "addAgents")


class Change(_Strict):
    """Exactly one of the fields is set; the key names the kind of change."""

    remove_nodes: NodeSet | None = None
    drain_nodes: NodeSet | None = None
    add_nodes: AddNodes | None = None
    set_quota: SetQuota | None = None
    set_token_budget: SetTokenBudget | None = None
    set_priority: SetPriority | None = None
    add_agents: AddAgents | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping with one of {', '.join(CHANGE_KINDS)}, "
                             f"got {data!r:.60}")
        keys = [k for k in data if data[k] is not None]
        if len(keys) != 1:
            got = ", ".join(map(str, keys)) or "nothing"
            raise ValueError(f"exactly one of {', '.join(CHANGE_KINDS)} per change, got {got}")
        return data

    @property
    def kind(self) -> str:
        return next(k for k in CHANGE_KINDS if getattr(self, _snake(k)) is not None)

    @property
    def body(self) -> Any:
        return getattr(self, _snake(self.kind))


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


class SolveOptions(_Strict):
    """Solve options a scenario may vary (over the command's own); see optimizer.SolveConfig."""

    profile: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    strategy: Literal["LeastAllocated", "MostAllocated"] | None = None
    time_limit: float | None = Field(default=None, gt=0)
    seed: int | None = None
    term_gap: float | None = Field(default=None, ge=0)
    preemption: bool | None = None  # false: never evict running pods for the scenario's agents


class ScenarioMeta(_Strict):
    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


class Scenario(_Strict):
    api_version: Literal["agentplace.io/v1alpha1"] = "agentplace.io/v1alpha1"
    kind: Literal["Scenario"] = "Scenario"
    metadata: ScenarioMeta
    description: str = ""
    solve: SolveOptions | None = None
    changes: list[Change] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Scenario:
        if not self.changes and self.solve is None:
            raise ValueError("changes: Required value: a scenario needs changes, solve options "
                             "or both")
        return self

    @property
    def name(self) -> str:
        return self.metadata.name


def parse_scenario(doc: Any, source: str = "<scenario>") -> Scenario:
    """Validate one parsed document; every bad field is reported, as the cluster loader does."""
    name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) and isinstance(
        doc.get("metadata"), dict) else None
    label = f"Scenario {name}" if name else f"Scenario <{source}>"
    if not isinstance(doc, dict):
        raise InputErrors([InputError(label, "", f"expected a mapping, got {doc!r:.60}")])
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise InputErrors(from_validation_error(label, exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """One Scenario from a YAML or JSON file (one document)."""
    p = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d is not None]
    except OSError as exc:
        raise InputErrors([InputError(f"file {p}", "", exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        raise InputErrors([InputError(f"file {p}", "", f"not valid YAML: {' '.join(str(exc).split())}")]
                          ) from None
    if len(docs) != 1:
        raise InputErrors([InputError(f"file {p}", "", f"expected one Scenario document, found {len(docs)}")])
    return parse_scenario(docs[0], str(p))


# --- applying a scenario: a pure function, Inventory in, new Inventory out ---------------------

@dataclass(frozen=True)
class Eviction:
    """A pod that lost its node: `fate` is requeued, lost, daemonset or blocked."""

    pod: str
    node: str
    fate: str
    reason: str


@dataclass
class Applied:
    """What applying a scenario did, for the diff: readable change lines and the pods touched."""

    inventory: Inventory
    changes: list[str] = field(default_factory=list)
    evictions: list[Eviction] = field(default_factory=list)
    removed_nodes: list[str] = field(default_factory=list)
    added_nodes: list[str] = field(default_factory=list)
    added_agents: list[str] = field(default_factory=list)
    reprioritised: list[str] = field(default_factory=list)


def _copy_inventory(inv: Inventory) -> Inventory:
    # the lists are new; the frozen objects in them are shared until a change replaces one
    return Inventory(nodes=list(inv.nodes), pods=list(inv.pods), quotas=list(inv.quotas),
                     priority_classes=list(inv.priority_classes), pdbs=list(inv.pdbs),
                     namespaces=list(inv.namespaces), pricing=list(inv.pricing),
                     token_budgets=list(inv.token_budgets), pod_groups=list(inv.pod_groups),
                     warnings=list(inv.warnings))


def apply_scenario(inv: Inventory, scenario: Scenario) -> Applied:
    """The cluster after the scenario's changes, in order; `inv` is never modified. Every
    reference that resolves to nothing is an error (a sweep must not silently test nothing)."""
    out = Applied(_copy_inventory(inv))
    errors: list[InputError] = []
    label = f"Scenario {scenario.name}"
    for i, change in enumerate(scenario.changes):
        where = f"changes[{i}].{change.kind}"
        apply = _APPLY[change.kind]
        apply(out, change.body, label, where, errors)
    if errors:
        raise InputErrors(errors)
    return out


def _select_nodes(inv: Inventory, ns: NodeSet, label: str, where: str,
                  errors: list[InputError]) -> list[Node]:
    names = {n.name for n in inv.nodes}
    for j, name in enumerate(ns.names):
        if name not in names:
            errors.append(InputError(label, f"{where}.names[{j}]", f"Not found: no Node named {name!r}"))
    chosen = [n for n in inv.nodes if n.name in ns.names or selects(ns.selector, n.labels)]
    if not chosen and ns.names == [] and ns.selector is not None:
        errors.append(InputError(label, f"{where}.selector", "Invalid value: selects no node"))
    return chosen


def _owner_kind(pod: Pod) -> str | None:
    owner = next((o for o in pod.metadata.owner_references if o.controller), None)
    owner = owner or (pod.metadata.owner_references[0] if pod.metadata.owner_references else None)
    return owner.kind if owner else None


def _requeued(pod: Pod) -> Pod:
    """The controller's replacement: same identity (and uid: already admitted), pending."""
    return pod.model_copy(update={"spec": pod.spec.model_copy(update={"node_name": None}),
                                  "status": PodStatus(phase="Pending")})


def _lose_nodes(out: Applied, nodes: list[Node], drain: bool) -> None:
    """Evict the pods bound to `nodes`; a drain keeps DaemonSet pods and honours PDBs."""
    gone = {n.name for n in nodes}
    budgets = {p.ref: p.status.disruptions_allowed for p in out.inventory.pdbs}
    kept: list[Pod] = []
    for pod in out.inventory.pods:
        if pod.spec.node_name not in gone:
            kept.append(pod)
            continue
        if pod.is_terminal:
            if drain:
                kept.append(pod)
            continue  # a finished pod holds nothing; it goes with a removed node
        node = pod.spec.node_name or ""
        kind = _owner_kind(pod)
        if kind == "DaemonSet":
            if drain:
                kept.append(pod)
            else:
                out.evictions.append(Eviction(pod.ref, node, "daemonset",
                                              "a DaemonSet pod goes with its node"))
            continue
        if drain:
            pdbs = [b for b in out.inventory.pdbs if _pdb_covers(b, pod)]
            blocking = [b.ref for b in pdbs if budgets[b.ref] <= 0]
            if blocking:
                kept.append(pod)
                out.evictions.append(Eviction(
                    pod.ref, node, "blocked", f"Cannot evict pod as it would violate the pod's "
                    f"disruption budget ({', '.join(blocking)}): it stays on the cordoned node"))
                continue
            for b in pdbs:
                budgets[b.ref] -= 1
        if kind is None:
            out.evictions.append(Eviction(pod.ref, node, "lost",
                                          "no controller recreates a bare pod"))
            continue
        kept.append(_requeued(pod))
        out.evictions.append(Eviction(pod.ref, node, "requeued",
                                      f"recreated by its {kind}, to be placed again"))
    out.inventory.pods = kept


def _pdb_covers(pdb: PodDisruptionBudget, pod: Pod) -> bool:
    # policy/v1: a null selector selects no pod, an empty one every pod of the namespace
    sel = pdb.spec.selector
    return pdb.namespace == pod.namespace and sel is not None and (
        selects(sel, pod.labels) if (sel.match_labels or sel.match_expressions) else True)


def _remove_nodes(out: Applied, body: NodeSet, label: str, where: str,
                  errors: list[InputError]) -> None:
    nodes = _select_nodes(out.inventory, body, label, where, errors)
    names = {n.name for n in nodes}
    _lose_nodes(out, nodes, drain=False)
    out.inventory.nodes = [n for n in out.inventory.nodes if n.name not in names]
    out.removed_nodes += sorted(names)
    out.changes.append(f"{where}: removed {len(names)} node(s)")


def _drain_nodes(out: Applied, body: NodeSet, label: str, where: str,
                 errors: list[InputError]) -> None:
    nodes = _select_nodes(out.inventory, body, label, where, errors)
    names = {n.name for n in nodes}
    _lose_nodes(out, nodes, drain=True)
    cordoned = []
    for n in out.inventory.nodes:
        if n.name in names:
            taints = n.spec.taints if any(t.key == UNSCHEDULABLE_TAINT.key for t in n.spec.taints) \
                else [*n.spec.taints, UNSCHEDULABLE_TAINT]
            n = n.model_copy(update={"spec": n.spec.model_copy(
                update={"unschedulable": True, "taints": taints})})
        cordoned.append(n)
    out.inventory.nodes = cordoned
    out.changes.append(f"{where}: cordoned and drained {len(names)} node(s)")


def _add_nodes(out: Applied, body: AddNodes, label: str, where: str,
               errors: list[InputError]) -> None:
    inv = out.inventory
    template = body.template
    if body.copy_of is not None:
        template = next((n for n in inv.nodes if n.name == body.copy_of), None)
        if template is None:
            errors.append(InputError(label, f"{where}.copyOf", f"Not found: no Node named {body.copy_of!r}"))
            return
    elif body.like is not None:
        chosen = _select_nodes(inv, body.like, label, f"{where}.like", errors)
        if not chosen:
            return
        template = min(chosen, key=lambda n: n.name)
    assert template is not None
    source = body.copy_of or (template.name if body.like is not None else None)
    prefix = body.name_prefix or (f"{source}-copy" if source else "whatif-node")
    existing = {n.name for n in inv.nodes}
    new = []
    for k in range(1, body.count + 1):
        name = f"{prefix}-{k}"
        if name in existing:
            errors.append(InputError(label, f"{where}.namePrefix", f"Duplicate value: a Node "
                                     f"named {name!r} already exists"))
            return
        labels = {**template.labels, HOSTNAME: name, **body.labels}
        meta = ObjectMeta(name=name, labels=labels, annotations=template.metadata.annotations)
        spec = template.spec.model_copy(update={"provider_id": None})
        new.append(template.model_copy(update={"metadata": meta, "spec": spec}))
    inv.nodes = [*inv.nodes, *new]
    out.added_nodes += [n.name for n in new]
    out.changes.append(f"{where}: added {body.count} node(s) {prefix}-1..{body.count}")


def _set_quota(out: Applied, body: SetQuota, label: str, where: str,
               errors: list[InputError]) -> None:
    inv = out.inventory
    hit = [q for q in inv.quotas if q.namespace == body.namespace and q.name == body.name]
    if not hit:
        errors.append(InputError(label, f"{where}.name",
                                 f"Not found: no ResourceQuota {body.namespace}/{body.name}"))
        return
    inv.quotas = [q.model_copy(update={"spec": q.spec.model_copy(
        update={"hard": {**q.spec.hard, **body.hard}})}) if q is hit[0] else q for q in inv.quotas]
    values = ", ".join(f"{k}={v.text}" for k, v in sorted(body.hard.items()))
    out.changes.append(f"{where}: ResourceQuota {body.namespace}/{body.name} hard {values}")


def _set_token_budget(out: Applied, body: SetTokenBudget, label: str, where: str,
                      errors: list[InputError]) -> None:
    inv = out.inventory
    hit = [b for b in inv.token_budgets if b.namespace == body.namespace and b.name == body.name]
    if not hit:
        errors.append(InputError(label, f"{where}.name",
                                 f"Not found: no TokenBudget {body.namespace}/{body.name}"))
        return
    if body.dollars is not None and not inv.pricing:
        errors.append(InputError(label, f"{where}.dollars", "Invalid value: a currency budget "
                                 "needs a PricingTable in the input to price placements"))
        return
    update: dict[str, Any] = {}
    if body.tokens is not None:
        update["tokens"] = body.tokens
    if body.dollars is not None:
        update["dollars"] = body.dollars
    inv.token_budgets = [b.model_copy(update={"spec": b.spec.model_copy(update=update)})
                         if b is hit[0] else b for b in inv.token_budgets]
    values = ", ".join(f"{k}={v.text if k == 'tokens' else v}" for k, v in update.items())
    out.changes.append(f"{where}: TokenBudget {body.namespace}/{body.name} {values}")


def _set_priority(out: Applied, body: SetPriority, label: str, where: str,
                  errors: list[InputError]) -> None:
    inv = out.inventory
    sel = body.agents
    if body.priority_class_name is not None and body.priority_class_name not in {
            pc.name for pc in inv.priority_classes}:
        errors.append(InputError(label, f"{where}.priorityClassName", "Not found: no "
                                 f"PriorityClass with name {body.priority_class_name} was found"))
        return
    refs = {n if "/" in n else f"{sel.namespace or 'default'}/{n}" for n in sel.names}
    pending = {p.ref for p in inv.pending}
    for j, ref in enumerate(sorted(refs)):
        if ref not in pending:
            errors.append(InputError(label, f"{where}.agents.names[{j}]",
                                     f"Not found: no pending agent {ref}"))

    def chosen(p: Pod) -> bool:
        return p.is_pending and _in_agent_set(p, sel)

    hits = [p.ref for p in inv.pods if chosen(p)]
    if not hits:
        errors.append(InputError(label, f"{where}.agents", "Invalid value: selects no pending agent"))
        return
    update = ({"priority": body.priority} if body.priority is not None
              else {"priority": None, "priority_class_name": body.priority_class_name})
    inv.pods = [p.model_copy(update={"spec": p.spec.model_copy(update=update)}) if chosen(p) else p
                for p in inv.pods]
    out.reprioritised += hits
    to = body.priority if body.priority is not None else f"class {body.priority_class_name}"
    out.changes.append(f"{where}: priority of {len(hits)} agent(s) set to {to}")


def _in_agent_set(p: Pod, sel: AgentSet) -> bool:
    """In the set's namespace (any when absent), and named or selected when it names or
    selects; a set with neither takes the whole namespace."""
    if sel.namespace is not None and p.namespace != sel.namespace:
        return False
    if sel.names or sel.selector is not None:
        refs = {n if "/" in n else f"{sel.namespace or 'default'}/{n}" for n in sel.names}
        return p.ref in refs or selects(sel.selector, p.labels)
    return True


def _add_agents(out: Applied, body: AddAgents, label: str, where: str,
                errors: list[InputError]) -> None:
    inv = out.inventory
    template = body.template
    if body.copy_of is not None:
        template = next((p for p in inv.pods if p.ref == body.copy_of), None)
        if template is None:
            errors.append(InputError(label, f"{where}.copyOf", f"Not found: no Pod {body.copy_of}"))
            return
    elif body.like is not None:
        chosen = sorted((p for p in inv.pods if not p.is_terminal and _in_agent_set(p, body.like)),
                        key=lambda p: p.ref)
        if not chosen:
            errors.append(InputError(label, f"{where}.like", "Invalid value: selects no pod"))
            return
        template = chosen[0]
    assert template is not None
    copied = body.copy_of is not None or body.like is not None
    namespace = body.namespace or template.metadata.namespace or "default"
    prefix = body.name_prefix or (f"{template.name}-burst" if copied else "whatif-agent")
    existing = {p.ref for p in inv.pods}
    new = []
    for k in range(1, body.count + 1):
        name = f"{prefix}-{k}"
        if f"{namespace}/{name}" in existing:
            errors.append(InputError(label, f"{where}.namePrefix", f"Duplicate value: a Pod "
                                     f"{namespace}/{name} already exists"))
            return
        # no uid: a new agent, charged by ResourceQuota when placed
        meta = template.metadata.model_copy(update={
            "name": name, "namespace": namespace, "uid": None,
            "labels": {**template.labels, **body.labels}})
        new.append(template.model_copy(update={
            "metadata": meta, "spec": template.spec.model_copy(update={"node_name": None}),
            "status": PodStatus(phase="Pending")}))
    inv.pods = [*inv.pods, *new]
    out.added_agents += [p.ref for p in new]
    out.changes.append(f"{where}: added {body.count} agent(s) {namespace}/{prefix}-1..{body.count}")


_APPLY: dict[str, Any] = {
    "removeNodes": _remove_nodes,
    "drainNodes": _drain_nodes,
    "addNodes": _add_nodes,
    "setQuota": _set_quota,
    "setTokenBudget": _set_token_budget,
    "setPriority": _set_priority,
    "addAgents": _add_agents,
}
