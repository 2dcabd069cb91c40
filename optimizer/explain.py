"""kube-scheduler's words for why an agent does not fit: per-node reasons and the FitError line.

Each node reports the reasons of the first rule, in Filter order, that rejects the agent;
the message is kube's histogram, `0/N nodes are available: ` + sorted "count reason" parts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from models import Node, Pod
from optimizer.rules import RULES, NodeUsage, Reason
from optimizer.rules.base import ClusterView
from optimizer.snapshot import Snapshot


@dataclass(frozen=True)
class PreFilterResult:
    """What PreFilter plugins decided before any Filter ran: `nodes` None means all nodes;
    `failure` is the PreFilterMsg when a plugin rejected the pod outright."""

    nodes: frozenset[str] | None = None
    plugins: tuple[str, ...] = ()
    failure: str | None = None


def run_pre_filters(pod: Pod) -> PreFilterResult:
    """framework.RunPreFilterPlugins: node sets intersect; the first failure stops the run."""
    nodes: frozenset[str] | None = None
    plugins: list[str] = []
    for rule in RULES:
        pre = getattr(rule, "pre_filter", None)
        if pre is None:
            continue
        names, failure = pre(pod)
        if failure:
            return PreFilterResult(failure=failure)
        if names is not None:
            nodes = frozenset(names) if nodes is None else nodes & names
            plugins.append(rule.name)
    if nodes is not None and not nodes:
        joined = ", ".join(plugins)
        msg = (f"node(s) didn't satisfy plugin {plugins[0]}" if len(plugins) == 1 else
               f"node(s) didn't satisfy plugin(s) [{joined}] simultaneously")
        return PreFilterResult(failure=msg)
    return PreFilterResult(nodes, tuple(plugins))


def absent_reason(pre: PreFilterResult) -> Reason:
    """The status kube gives nodes a PreFilterResult left out (schedule_one.go)."""
    return Reason(pre.plugins[0] if pre.plugins else "PreFilter",
                  f"node(s) didn't satisfy plugin(s) [{', '.join(sorted(pre.plugins))}]",
                  unresolvable=True)


def node_reasons(pod: Pod, node: Node, usage: NodeUsage,
                 pre: PreFilterResult | None = None) -> list[Reason]:
    """The reasons of the first rule, in Filter order, that rejects `node`."""
    if pre is not None and pre.nodes is not None and node.name not in pre.nodes:
        return [absent_reason(pre)]
    for rule in RULES:
        reasons = rule.explain(pod, node, usage)
        if reasons:
            return reasons
    return []


def fit_message(num_nodes: int, rejected: Mapping[str, list[Reason]],
                pre_filter_msg: str | None = None) -> str:
    """framework.FitError.Error(): reasons counted over nodes and sorted as strings; when a
    PreFilter rejected the pod, only its message."""
    if pre_filter_msg:
        return f"0/{num_nodes} nodes are available: {pre_filter_msg}."
    histogram: Counter[str] = Counter()
    for reasons in rejected.values():
        for r in dict.fromkeys(x.message for x in reasons):
            histogram[r] += 1
    parts = sorted(f"{n} {reason}" for reason, n in histogram.items())
    msg = f"0/{num_nodes} nodes are available:"
    if parts:
        msg += " " + ", ".join(parts) + "."
    return msg


@dataclass
class AgentExplanation:
    agent: str
    feasible: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    message: str = ""
    admission: str | None = None  # an admission plugin's rejection, which replaces `message`
    counterfactual: str | None = None  # the smallest one-rule change that would let a node take it
    reasons: dict[str, list[Reason]] = field(default_factory=dict, repr=False)  # per rejecting node

    def to_dict(self) -> dict[str, object]:
        return {"agent": self.agent, "feasible": self.feasible, "rejected": self.rejected,
                "message": self.message, "counterfactual": self.counterfactual}


def cluster_usage(snap: Snapshot, extra: Mapping[str, str] | None = None) -> dict[str, NodeUsage]:
    """Requested resources per node: running pods, plus `extra` placements (agent -> node)."""
    bound = [(pod, pod.spec.node_name or "") for pod in snap.running]
    if extra:
        pods = {p.ref: p for p in snap.pending}
        bound += [(pods[agent], node) for agent, node in extra.items()]
    namespaces = {p.namespace for p, _ in bound} | {p.namespace for p in snap.pending} | {
        ns.name for ns in snap.namespaces}
    view = ClusterView(snap.nodes, tuple(bound),
                       {ns: snap.namespace_labels(ns) for ns in sorted(namespaces)})
    usage = {n.name: NodeUsage(cluster=view) for n in snap.nodes}
    for pod, node in bound:
        usage[node].add(pod.requests())
    return usage


def admission_reason(pod: Pod, snap: Snapshot, placed: Collection[str] = ()) -> str | None:
    """Admission plugins (ResourceQuota) run when a pod is created, before any Filter: the
    first rejection in registry order, or None. `placed`: new agents created before it."""
    for rule in RULES:
        check = getattr(rule, "admission_reason", None)
        if check is not None:
            reason = check(pod, snap, placed)
            if reason:
                return str(reason)
    return None


def explain_agent(pod: Pod, snap: Snapshot, usage: Mapping[str, NodeUsage],
                  placed: Collection[str] = ()) -> AgentExplanation:
    """`placed`: the agents a plan places, created before this one (admission counts them)."""
    out = AgentExplanation(pod.ref)
    if not snap.nodes:
        out.message = "no nodes available to schedule pods"  # ErrNoNodesAvailable
        return out
    pre = run_pre_filters(pod)
    if pre.failure:
        out.rejected = {n.name: pre.failure for n in snap.nodes}
        out.reasons = {n.name: [Reason("PreFilter", pre.failure, unresolvable=True)]
                       for n in snap.nodes}
        out.message = fit_message(len(snap.nodes), {}, pre.failure)
        return out
    rejected: dict[str, list[Reason]] = {}
    for node in snap.nodes:
        reasons = node_reasons(pod, node, usage[node.name], pre)
        if reasons:
            rejected[node.name] = reasons
            out.reasons[node.name] = reasons
            out.rejected[node.name] = ", ".join(r.message for r in reasons)
        else:
            out.feasible.append(node.name)
    if rejected and not out.feasible:
        out.message = fit_message(len(snap.nodes), rejected)
    elif rejected:
        out.message = f"{len(out.feasible)}/{len(snap.nodes)} nodes are feasible"
    else:
        out.message = f"{len(snap.nodes)}/{len(snap.nodes)} nodes are feasible"
    # kube admits a pod before it schedules it: an admission error is what the user sees
    out.admission = admission_reason(pod, snap, placed)
    if out.admission:
        out.message = out.admission
    return out


def explain_pending(snap: Snapshot) -> list[AgentExplanation]:
    """kube's Filter phase for each pending agent against the cluster as given."""
    from optimizer.counterfactual import counterfactual  # a later stage of the same reading

    usage = cluster_usage(snap)
    out = [explain_agent(p, snap, usage) for p in snap.pending]
    for e, pod in zip(out, snap.pending, strict=True):
        if not e.feasible and not e.admission:
            e.counterfactual = counterfactual(pod, snap, usage)
    return out
