"""Counterfactuals: for an agent no node takes, the smallest single change that would let one.

Method (per-rule relaxation, stated in the README): against the cluster after the plan, every
Filter rule is run on every node, not only the first failing one as kube does. A node that
exactly one rule rejects is one change away; that change is described per rule and sized, and
the smallest wins. Resource shortfalls are sized by the largest missing fraction of the node's
allocatable (smaller first), then come a toleration, an uncordon, a node selector or affinity
change, a larger maxSkew (sized per topology spread constraint), the other batch rules
(inter-agent affinity, gangs), and last a request
larger than the node's whole allocatable (only a bigger node would do).
"""

from __future__ import annotations

from collections.abc import Mapping

from models import Node, Pod
from models.quantity import format_units
from optimizer.rules import RULES, NodeUsage
from optimizer.rules import topology_spread as ts
from optimizer.rules.taints import untolerated_taint
from optimizer.snapshot import Snapshot

ORDER = {"NodeResourcesFit": 0, "TaintToleration": 1, "NodeUnschedulable": 2, "NodeAffinity": 3}


def _describe(rule: str, pod: Pod, node: Node, usage: NodeUsage, messages: list[str]
              ) -> tuple[float, str]:
    """(size, text) of the change that lifts `rule`'s rejection of `pod` on `node`."""
    if rule == "NodeResourcesFit":
        alloc = node.allocatable()
        missing, worst = [], 0.0
        if usage.pods + 1 > alloc.get("pods", 0):
            missing.append("1 more pod slot")
            worst = 1.0
        for r, v in sorted(pod.requests().items()):
            short = v - (alloc.get(r, 0) - usage.requested.get(r, 0))
            if v > 0 and short > 0:
                missing.append(f"{format_units(r, short)} more {r}")
                # more than the whole node: only a bigger node helps, the largest change of all
                worst = max(worst, short / alloc[r] if 0 < v <= alloc.get(r, 0) else 100.0)
        return worst, f"fits on {node.name} with {' and '.join(missing)} free there"
    if rule == "TaintToleration":
        taint = untolerated_taint(pod.spec.tolerations, node)
        key, value, effect = taint if taint else ("?", "", "")
        shown = f"{key}={value}:{effect}" if value else f"{key}:{effect}"
        return 1.0 + ORDER[rule], f"fits on {node.name} if it tolerated {shown}"
    if rule == "NodeUnschedulable":
        return 1.0 + ORDER[rule], f"fits on {node.name} if the node were uncordoned"
    if rule == "PodTopologySpread":
        relaxed = _spread_relaxation(pod, node, usage)
        if relaxed:
            return 5.0, f"fits on {node.name} with {relaxed}"
    if rule == "NodeAffinity":
        return 1.0 + ORDER[rule], (f"fits on {node.name} if its nodeSelector / required node "
                                   "affinity admitted that node")
    return 10.0, f"fits on {node.name} if this were lifted: {'; '.join(messages)}"


def _spread_relaxation(pod: Pod, node: Node, usage: NodeUsage) -> str | None:
    """The maxSkew each violated DoNotSchedule constraint would need for this node."""
    view = usage.cluster
    if view is None:
        return None
    cs = ts.hard_constraints(pod)
    needs = []
    for c in cs:
        value = node.labels.get(c.topology_key)
        if value is None:
            return None  # a missing key is unresolvable, no maxSkew helps
        counter = ts._counter(pod, cs, c, view.nodes, view.pods)
        skew = ts._skew(c, counter, value, int(ts.selector_matches(c.selector, pod.labels)))
        if skew > c.max_skew:
            needs.append(f"maxSkew {skew} on {c.topology_key} (now {c.max_skew})")
    return " and ".join(needs) or None


def counterfactual(pod: Pod, snap: Snapshot, usage: Mapping[str, NodeUsage]) -> str | None:
    """The smallest one-rule change that makes some node take `pod`, or None if every node is
    rejected by two or more rules."""
    best: tuple[float, str, str] | None = None
    for node in snap.nodes:
        failing: list[tuple[str, list[str]]] = []
        for rule in RULES:
            if reasons := rule.explain(pod, node, usage[node.name]):
                failing.append((rule.name, [r.message for r in reasons]))
                if len(failing) > 1:  # two rules reject it: no one-rule change helps here
                    break
        if len(failing) != 1:
            continue
        size, text = _describe(failing[0][0], pod, node, usage[node.name], failing[0][1])
        if best is None or (size, node.name) < best[:2]:
            best = (size, node.name, text)
    return best[2] if best else None
