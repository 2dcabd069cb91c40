"""The independent verifier: every plan from every path passes through here before it is returned.

It reads the raw objects of the Snapshot with straightforward code (each rule's own `verify`,
written without the index tables or the CP-SAT encoding) and never imports ortools.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from optimizer.rules import RULES, Violation
from optimizer.snapshot import Snapshot

STRUCTURE = "Plan"


def verify(placements: Sequence[tuple[str, str]], snap: Snapshot,
           unplaced: Sequence[str] = ()) -> list[Violation]:
    """All violations of `placements` (agent ref, node name); empty means the plan is valid.

    When `unplaced` is given, also checks that every pending agent is accounted for exactly once.
    """
    pending = {p.ref for p in snap.pending}
    nodes = {n.name for n in snap.nodes}
    out: list[Violation] = []
    counts = Counter(agent for agent, _ in placements)
    for agent, node in placements:
        if agent not in pending:
            out.append(Violation(STRUCTURE, agent, node, "not a pending agent of this window"))
        if node not in nodes:
            out.append(Violation(STRUCTURE, agent, node, "no such node in the snapshot"))
    for agent, n in counts.items():
        if n > 1:
            out.append(Violation(STRUCTURE, agent, None, f"placed {n} times"))
    if unplaced:
        left = set(unplaced)
        for agent in sorted(pending - set(counts) - left):
            out.append(Violation(STRUCTURE, agent, None, "neither placed nor unplaced: lost"))
        for agent in sorted(set(counts) & left):
            out.append(Violation(STRUCTURE, agent, None, "both placed and unplaced"))
    assignment = {agent: node for agent, node in placements}
    for rule in RULES:
        out.extend(rule.verify(assignment, snap))
    return out
