"""ResourceQuota: a namespace-wide hard cap on what its pods may consume, checked at admission.

kube-apiserver's ResourceQuota admission plugin (apiserver/pkg/admission/plugin/resourcequota,
with the pod evaluator of pkg/quota/v1/evaluator/core/pods.go) runs when a pod is *created*,
before the scheduler ever sees it. It is not a Filter: it never depends on the node, so this
rule rejects or admits a whole agent, and its reasons are admission errors, not node reasons.

What is charged, per pod (PodUsageFunc + podComputeUsageHelper):
  `count/pods` and `pods` 1 each; `cpu` = `requests.cpu`, `memory` = `requests.memory`,
  `ephemeral-storage` = `requests.ephemeral-storage` from the effective pod requests (kube's
  PodRequests: containers, sidecars, init peak, overhead); `limits.cpu`, `limits.memory`,
  `limits.ephemeral-storage` from the effective limits (PodLimits); `hugepages-<size>` and
  `requests.hugepages-<size>`; `requests.<extended>` for an extended resource such as
  `requests.nvidia.com/gpu` (extended resources are only quota-able as `requests.*`).
  Other hard keys (services, count/deployments.apps, ...) do not concern pods and are ignored.

Design decisions:
  - Already admitted = a pending pod with `metadata.uid`: it exists in the API server, so the
    quota controller already counts it in `status.used`. It is never charged again and never
    rejected by quota. A pending pod without a uid is a new agent (a manifest not yet created):
    placing it means creating it, so it is charged on top of `status.used`. An agent left
    unplaced is not created, so it is not charged.
  - Usage is `status.used`. For a hard resource `status.used` lacks (a quota the controller has
    not synced; kube's admission would answer "status unknown for quota"), usage is computed
    from the bound and admitted pods of the namespace that match the quota's scopes, and the
    snapshot warns about it.
  - The cap is `spec.hard` (kube's admission reads `status.hard`, which the controller copies
    from `spec.hard`).
  - A quota that tracks cpu or memory (`cpu`, `requests.cpu`, `limits.cpu`, and the memory
    ones) rejects an agent any of whose containers or init containers does not set that
    request / limit (a limit alone sets the request: API defaulting). kube calls this a
    mistake it keeps for compatibility; so do we.
  - Scopes, ANDed: `spec.scopes` and `spec.scopeSelector` with PriorityClass
    (In / NotIn / Exists / DoesNotExist on the pod's priorityClassName; a new agent without one
    gets the globalDefault class's name, as the Priority admission plugin sets it before quota
    runs), BestEffort / NotBestEffort (no cpu/memory request or limit in any container),
    Terminating / NotTerminating (activeDeadlineSeconds >= 0) and CrossNamespacePodAffinity.
  - kube checks only the resources a pod consumes a non-zero amount of, and quota sums are
    monotone, so a set of new agents can be admitted in some order iff, per quota and resource
    some of them consume: used + their sum <= hard. This is exact and order-free.
  - Quantities: the verifier sums exact fractions. The encoding charges each agent its amount
    rounded up (millicores for cpu, requests.cpu, limits.cpu; units otherwise) against
    hard - used rounded down, so it can only be stricter than kube, never looser.

Messages, as kube prints them after `pods "<name>" is forbidden: ` (admission.NewForbidden):
  `failed quota: <quota>: must specify limits.cpu for: <containers>; requests.memory for: ...`
  `exceeded quota: <quota>, requested: requests.cpu=2, used: requests.cpu=9, limited: requests.cpu=10`
Resources are sorted, container names sorted and comma-joined; values are Quantity.String().

Readings: `prefilter` gives an all-False row to a class whose single agent already misses a
required request/limit or exceeds what is left (hard - used) on a resource it consumes;
`encode` adds, per quota and charged resource, sum_c amount[c] * placed[c] <= hard - used
(only where it can bind); `admits` lets the greedy check the same sums step by step;
`verify` re-reads the raw objects with plain sums; `admission_reason` gives the unplaced
agent kube's admission error against status.used plus the plan's placements.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from models import Node, Pod
from models import ResourceQuota as Quota
from models.policy import is_native_resource, is_pod_quota_resource
from models.quantity import canonical, quantity_format, quota_units
from optimizer.index import Index
from optimizer.rules.base import Assignment, NodeUsage, Reason, Violation
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.baseline import GreedyState
    from optimizer.model import ModelBuilder

NAME = "ResourceQuota"
# pods.go validationSet: a quota on these makes every container name them
MUST_SPECIFY = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
                          "limits.memory"})
COMPUTE = ("cpu", "memory", "ephemeral-storage")
DECIMAL = "DecimalSI"


# --- kube's reading of one pod against one quota (used by admission_reason and verify) --------

def is_admitted(pod: Pod) -> bool:
    """The pod exists in the API server: its usage is already in status.used."""
    return bool(pod.metadata.uid)


def tracked(quota: Quota) -> list[str]:
    """The hard resources pods consume (podEvaluator.MatchingResources), sorted."""
    return sorted(r for r in quota.spec.hard if is_pod_quota_resource(r))


def is_extended(resource: str) -> bool:
    """v1helper.IsExtendedResourceName: a domain-qualified, non-kubernetes.io resource."""
    return not is_native_resource(resource) and not resource.startswith("requests.")


def charges(pod: Pod) -> dict[str, Fraction]:
    """PodUsageFunc: every quota resource name this pod consumes, exactly (zeros included)."""
    out = {"count/pods": Fraction(1), "pods": Fraction(1)}
    requests, limits = pod.exact_requests(), pod.exact_limits()
    for r in COMPUTE:
        if r in requests:
            out[r] = out[f"requests.{r}"] = requests[r]
        if r in limits:
            out[f"limits.{r}"] = limits[r]
    for r, v in requests.items():
        if r.startswith("hugepages-"):
            out[r] = out[f"requests.{r}"] = v
        elif is_extended(r):
            out[f"requests.{r}"] = v
    return out


def priority_class_name(pod: Pod, snap: Snapshot) -> str:
    """The name quota scopes see: a new agent without one gets the globalDefault class's name
    (the Priority admission plugin runs before ResourceQuota)."""
    name = pod.spec.priority_class_name or ""
    if not name and not is_admitted(pod):
        name = next((pc.name for pc in snap.priority_classes if pc.global_default), "")
    return name


def is_best_effort(pod: Pod) -> bool:
    """qos.GetPodQOS == BestEffort: no container sets a non-zero cpu or memory request/limit."""
    for c in (*pod.spec.containers, *pod.spec.init_containers):
        for amounts in (c.resources.requests, c.resources.limits):
            if any(amounts[r].value > 0 for r in ("cpu", "memory") if r in amounts):
                return False
    return True


def uses_cross_namespace_affinity(pod: Pod) -> bool:
    aff = pod.spec.affinity
    for group in (aff.pod_affinity, aff.pod_anti_affinity) if aff else ():
        if group is None:
            continue
        terms = [*group.required_during_scheduling_ignored_during_execution,
                 *(w.pod_affinity_term
                   for w in group.preferred_during_scheduling_ignored_during_execution)]
        if any(t.namespaces or t.namespace_selector is not None for t in terms):
            return True
    return False


def scope_selectors(quota: Quota) -> list[tuple[str, str, list[str]]]:
    """getScopeSelectorsFromQuota: spec.scopes as Exists, then spec.scopeSelector."""
    out = [(s, "Exists", []) for s in quota.spec.scopes]
    if quota.spec.scope_selector is not None:
        out += [(e.scope_name, e.operator, list(e.values))
                for e in quota.spec.scope_selector.match_expressions]
    return out


def matches_scope(pod: Pod, snap: Snapshot, scope: str, operator: str,
                  values: list[str]) -> bool:
    """podMatchesScopeFunc; an unknown scope matches no pod."""
    if scope in ("Terminating", "NotTerminating"):
        deadline = pod.spec.active_deadline_seconds
        return (deadline is not None and deadline >= 0) == (scope == "Terminating")
    if scope in ("BestEffort", "NotBestEffort"):
        return is_best_effort(pod) == (scope == "BestEffort")
    if scope == "CrossNamespacePodAffinity":
        return uses_cross_namespace_affinity(pod)
    if scope == "PriorityClass":
        name = priority_class_name(pod, snap)
        return {"Exists": bool(name), "DoesNotExist": not name,
                "In": bool(name) and name in values,
                "NotIn": not name or name not in values}.get(operator, False)
    return False


def quota_matches(quota: Quota, pod: Pod, snap: Snapshot) -> bool:
    """generic.Matches: same namespace, some hard resource pods consume, every scope matches."""
    return (quota.namespace == pod.namespace and bool(tracked(quota))
            and all(matches_scope(pod, snap, *s) for s in scope_selectors(quota)))


def must_specify(quota: Quota, pod: Pod) -> str | None:
    """podEvaluator.Constraints: the error, or None when every container names what it must."""
    required = set(tracked(quota)) & MUST_SPECIFY
    if not required:
        return None
    missing: dict[str, set[str]] = {}
    for c in (*pod.spec.containers, *pod.spec.init_containers):
        has = set()
        for r in ("cpu", "memory"):
            if r in c.resources.effective_requests():
                has |= {r, f"requests.{r}"}
            if r in c.resources.limits:
                has.add(f"limits.{r}")
        for r in required - has:
            missing.setdefault(r, set()).add(c.name)
    if not missing:
        return None
    parts = [f"{r} for: {','.join(sorted(names))}" for r, names in sorted(missing.items())]
    return f"failed quota: {quota.name}: must specify {'; '.join(parts)}"


def quota_used(quota: Quota, snap: Snapshot) -> dict[str, Fraction]:
    """status.used per tracked resource; where it is missing, the sum over the namespace's
    bound and admitted pending pods that match the quota's scopes."""
    used = {r: quota.status.used[r].value for r in tracked(quota) if r in quota.status.used}
    missing = [r for r in tracked(quota) if r not in used]
    if missing:
        pods = [*snap.running, *(p for p in snap.pending if is_admitted(p))]
        counted = [p for p in pods if quota_matches(quota, p, snap)]
        for r in missing:
            used[r] = sum((charges(p).get(r, Fraction(0)) for p in counted), Fraction(0))
    return used


def forbidden(pod: Pod, message: str) -> str:
    """apierrors.NewForbidden for pods: what `kubectl create` prints after `Error from server`."""
    return f'pods "{pod.name}" is forbidden: {message}'


def charge_format(pod: Pod, resource: str) -> str:
    """The Format of the pod's quantity for `resource`: kube's sums keep the first operand's,
    so this is the first container (then init container, then overhead) that names it."""
    kind, base = "requests", resource
    if resource.startswith(("requests.", "limits.")):
        kind, _, base = resource.partition(".")
    if base in ("pods", "count/pods"):
        return DECIMAL
    for c in (*pod.spec.containers, *pod.spec.init_containers):
        amounts = c.resources.limits if kind == "limits" else {
            **c.resources.limits, **c.resources.requests}
        if base in amounts:
            return quantity_format(amounts[base].text)
    if base in pod.spec.overhead:
        return quantity_format(pod.spec.overhead[base].text)
    return DECIMAL


def used_format(quota: Quota, resource: str) -> str:
    q = quota.status.used.get(resource) or quota.spec.hard[resource]
    return quantity_format(q.text)


def pretty(values: dict[str, str]) -> str:
    """prettyPrint: name=value, sorted by name, comma-joined."""
    return ",".join(f"{r}={v}" for r, v in sorted(values.items()))


def exceeded_message(quota: Quota, resources: Iterable[str], requested: dict[str, str],
                     used: dict[str, Fraction]) -> str:
    """CheckRequest's error, each list masked to the exceeded resources."""
    rs = sorted(resources)
    hard = quota.spec.hard
    asked = pretty({r: requested[r] for r in rs})
    now = pretty({r: canonical(used[r], used_format(quota, r)) for r in rs})
    cap = pretty({r: canonical(hard[r].value, quantity_format(hard[r].text)) for r in rs})
    return f"exceeded quota: {quota.name}, requested: {asked}, used: {now}, limited: {cap}"


_WINDOW: list[tuple[weakref.ref[Snapshot], Collection[str], dict[str, dict[str, Fraction]]]] = []


def usage_after(snap: Snapshot, placed: Collection[str]) -> dict[str, dict[str, Fraction]]:
    """Per quota ref: its usage once the new agents in `placed` are created (quota_used plus
    their charges). Memoised for the last (snap, placed) object pair, as solve asks once per
    unplaced agent with the same plan."""
    if _WINDOW and _WINDOW[0][0]() is snap and _WINDOW[0][1] is placed:
        return _WINDOW[0][2]
    pending = {p.ref: p for p in snap.pending}
    created = [pending[a] for a in placed if a in pending and not is_admitted(pending[a])]
    out: dict[str, dict[str, Fraction]] = {}
    for q in snap.quotas:
        used = quota_used(q, snap)
        for p in created:
            if quota_matches(q, p, snap):
                ch = charges(p)
                for r in used:
                    used[r] += ch.get(r, Fraction(0))
        out[q.ref] = used
    _WINDOW[:] = [(weakref.ref(snap), placed, out)]
    return out


# --- the vectorised reading: one table per Index ------------------------------------------------

@dataclass(frozen=True)
class QuotaTable:
    """Per (quota, charged resource) row: what one agent of each class consumes, rounded up,
    and what the quota has left, rounded down. Classes never charged have zero columns."""

    amount: np.ndarray  # int64[row, cls]
    remaining: np.ndarray  # int64[row]
    rejected: np.ndarray  # bool[cls]: a must-specify failure or a lone agent over the cap


_TABLES: weakref.WeakKeyDictionary[Index, QuotaTable] = weakref.WeakKeyDictionary()


def quota_table(ix: Index) -> QuotaTable:
    """Built once per Index from the class representatives (a class shares every field quota
    reads: namespace, uid or not, requests, limits, priorityClassName, deadline, containers)."""
    table = _TABLES.get(ix)
    if table is not None:
        return table
    snap = ix.snap
    rows: list[np.ndarray] = []
    remaining: list[int] = []
    rejected = np.zeros(ix.num_classes, dtype=bool)
    new = [c for c, cls in enumerate(ix.classes) if not is_admitted(cls.pod)]
    class_charges = {c: charges(ix.classes[c].pod) for c in new}
    for quota in snap.quotas:
        charged = [c for c in new if quota_matches(quota, ix.classes[c].pod, snap)]
        if not charged:
            continue
        for c in charged:
            if must_specify(quota, ix.classes[c].pod):
                rejected[c] = True
        used = quota_used(quota, snap)
        for r in tracked(quota):
            row = np.zeros(ix.num_classes, dtype=np.int64)
            for c in charged:
                row[c] = quota_units(r, class_charges[c].get(r, Fraction(0)))
            if row.any():
                rows.append(row)
                remaining.append(quota_units(r, quota.spec.hard[r].value - used[r],
                                             round_down=True))
    amount = (np.stack(rows) if rows else np.zeros((0, ix.num_classes), dtype=np.int64))
    left = np.asarray(remaining, dtype=np.int64)
    rejected |= ((amount > 0) & (amount > left[:, None])).any(axis=0)
    table = QuotaTable(amount, left, rejected)
    _TABLES[ix] = table
    return table


class ResourceQuota:
    name: ClassVar[str] = NAME

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """All-False rows for classes admission rejects even alone."""
        if not ix.snap.quotas:
            return None
        t = quota_table(ix)
        if not t.rejected.any():
            return None
        return np.broadcast_to(~t.rejected[:, None], (ix.num_classes, ix.num_nodes)).copy()

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        """Per quota and charged resource: sum_c amount[c] * placed[c] <= hard - used."""
        if not ix.snap.quotas:
            return
        t = quota_table(ix)
        has_pairs = np.zeros(ix.num_classes, dtype=bool)
        has_pairs[np.unique(mb.pair_cls)] = True
        for row, left in zip(t.amount, t.remaining.tolist(), strict=True):
            classes = np.nonzero((row > 0) & has_pairs)[0]
            if int((row[classes] * ix.class_size[classes]).sum()) <= left:
                continue  # cannot bind even if every agent is placed
            mb.model.add(sum(int(row[c]) * mb.placed[c] for c in classes.tolist()) <= left)
            mb.count_constraint(self.name)

    def admits(self, ix: Index, state: GreedyState, agent: int,
               node_mask: np.ndarray) -> np.ndarray:
        """Greedy hook: no node if binding this agent would push a quota over its cap."""
        if not ix.snap.quotas:
            return node_mask
        t = quota_table(ix)
        c = int(ix.class_of[agent])
        rows = np.nonzero(t.amount[:, c] > 0)[0]
        if rows.size == 0:
            return node_mask
        after = t.amount[rows] @ state.placed + t.amount[rows, c]
        return node_mask if bool((after <= t.remaining[rows]).all()) else np.zeros_like(node_mask)

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        """Quota is admission, not a node Filter: no node ever reports it (see admission_reason)."""
        return []

    def admission_reason(self, pod: Pod, snap: Snapshot,
                         placed: Collection[str] = ()) -> str | None:
        """kube's admission error for creating `pod` once the new agents in `placed` (refs) are
        created, or None when quota admits it. Constraints of every matching quota first, then
        usage, quota by quota, as CheckRequest does."""
        if is_admitted(pod):
            return None
        quotas = [q for q in snap.quotas if quota_matches(q, pod, snap)]
        if not quotas:
            return None
        for q in quotas:
            error = must_specify(q, pod)
            if error:
                return forbidden(pod, error)
        if pod.ref in placed:
            placed = [a for a in placed if a != pod.ref]
        after = usage_after(snap, placed)
        own = charges(pod)
        for q in quotas:
            used = after[q.ref]
            over = [r for r in tracked(q)
                    if own.get(r, 0) > 0 and used[r] + own[r] > q.spec.hard[r].value]
            if over:
                requested = {r: canonical(own[r], charge_format(pod, r)) for r in over}
                return forbidden(pod, exceeded_message(q, over, requested, used))
        return None

    def admission_counterfactual(self, pod: Pod, snap: Snapshot,
                                 placed: Collection[str] = ()) -> str | None:
        """The smallest quota change that admits `pod` after `placed`: how much more each
        exceeded resource of the first blocking quota would need (must-specify errors need a
        spec change instead, said by the reason itself)."""
        if is_admitted(pod):
            return None
        quotas = [q for q in snap.quotas if quota_matches(q, pod, snap)]
        if not quotas or any(must_specify(q, pod) for q in quotas):
            return None
        after = usage_after(snap, [a for a in placed if a != pod.ref])
        own = charges(pod)
        for q in quotas:
            used = after[q.ref]
            more = {r: used[r] + own[r] - q.spec.hard[r].value for r in tracked(q)
                    if own.get(r, 0) > 0 and used[r] + own[r] > q.spec.hard[r].value}
            if more:
                parts = [f"{canonical(v, charge_format(pod, r))} more {r}" for r, v in sorted(more.items())]
                return f"admitted if quota {q.ref} allowed {' and '.join(parts)}"
        return None

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        """Every placed new agent is created: each must pass Constraints, and per quota and
        resource the exact usage plus the window's sum must stay within hard."""
        pending = {p.ref: p for p in snap.pending}
        created = [pending[a] for a in assignment if a in pending and not is_admitted(pending[a])]
        out = []
        for q in snap.quotas:
            covered = [p for p in created if quota_matches(q, p, snap)]
            if not covered:
                continue
            for p in covered:
                error = must_specify(q, p)
                if error:
                    out.append(Violation(self.name, p.ref, assignment[p.ref], error))
            used = quota_used(q, snap)
            amounts = [(p, charges(p)) for p in covered]
            over, requested, agents = [], {}, set()
            for r in tracked(q):
                takers = [(p, ch[r]) for p, ch in amounts if ch.get(r, 0) > 0]
                total = sum((v for _, v in takers), Fraction(0))
                if takers and used[r] + total > q.spec.hard[r].value:
                    over.append(r)
                    requested[r] = canonical(total, charge_format(takers[0][0], r))
                    agents |= {p.ref for p, _ in takers}
            if over:
                out.append(Violation(self.name, ",".join(sorted(agents)), None,
                                     exceeded_message(q, over, requested, used)))
        return out
