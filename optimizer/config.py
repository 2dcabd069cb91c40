"""Solve options: every solver parameter is named here, none hidden in code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

Strategy = Literal["LeastAllocated", "MostAllocated"]


@dataclass(frozen=True)
class SolveConfig:
    time_limit: float = 10.0
    workers: int = 2
    seed: int = 0
    # secondary objective, after placed priority: kube's NodeResourcesFit scoring strategies
    strategy: Strategy = "LeastAllocated"
    # objective profile from profiles.yaml; None: "pack" for MostAllocated, else "balanced"
    profile: str | None = None
    weights: dict[str, float] = field(default_factory=dict)  # per-term overrides
    profiles_file: Path | None = None
    # the balance term's resources and integer weights (NodeResourcesFit scoring `resources`)
    balance_resources: dict[str, int] = field(default_factory=lambda: {"cpu": 1, "memory": 1})
    hint: bool = True
    # stop when proven within this fraction of a weight-1.0 term's full swing (CP-SAT's
    # absolute_gap_limit); priority stays exact whatever it is (see objective.py)
    term_gap: float = 0.02
    # interchangeable empty nodes (optimizer/model.py): "auto" orders their open flags when the
    # pack term is active (VBP smoke: proven optima 33 -> 44 % together with capacity linking);
    # "load" orders them by load (more proofs but a worse primal at 1 s: 10 -> 14 % proven, 58 ->
    # 83 bins above the references on 53 instances); "off"
    symmetry_breaking: Literal["auto", "load", "off"] = "auto"
    # after the main solve, minimise each weighted term alone (priority held): per-term bounds
    term_bounds: bool = False
    # running pods of lower priority may be evicted (optimizer/preemption.py); PDBs hard or
    # best-effort (kube's reading: exceeded only when nothing else works, fewest excess)
    preemption: bool = True
    pdb_mode: Literal["hard", "best-effort"] = "hard"
    # the clock lost work is measured against (victims' checkpoints); None: the wall clock
    now: datetime | None = None
    log_search: bool = False
    # extensions of one solve (e.g. optimizer/replan.py's move budgets): objects with optional
    # hooks encode(mb, ix) after the rules, heuristics(ix) -> extra [cls, node] count hints, and
    # accepts(counts) -> bool, which a heuristic plan must pass to be a hint or the fallback
    extensions: tuple[Any, ...] = ()
    # node-class aggregation (optimizer/aggregate.py): "auto" uses it for node-local windows
    # without a pack weight, "off" never
    aggregate: Literal["auto", "off"] = "off"
    # candidate scoping (optimizer/scoping.py): per agent class at most about this many nodes,
    # ranked by "fit" (the greedy's score; plus per-domain diversity and capacity slack) or
    # "tightness" (best fit, plus the heuristic plans' nodes); 0 = every candidate node
    scope_k: int = 0
    scope_by: Literal["fit", "tightness"] = "fit"
    # POP-style decomposition (optimizer/decompose.py): k independent parts, merged, one repair
    # pass; 0 or 1 = off. The pool: "process" (local, spawn), "serial", "ray" or "ray:ADDRESS"
    partitions: int = 0
    partition_pool: str = "process"
    # share of the time limit first spent solving without CP-SAT's presolve (solve.py
    # _two_phase); 0 = one solve as configured. Ignored when extra_parameters sets the presolve
    quick_phase: float = 0.2
    # models with at most this many variables run the second phase with a light presolve
    # (solve.py _light; the latency window's ~2,400-4,700). 0 = the full presolve always
    light_presolve_below: int = 10_000
    # drop the surplus of groups of interchangeable empty nodes (optimizer/interchangeable.py;
    # exact: the optimum is kept). Not with extensions or aggregation
    trim_interchangeable: bool = True
    extra_parameters: dict[str, object] = field(default_factory=dict)


TERMS = ("balance", "pack", "cost", "soft", "preemption")


class ConfigError(ValueError):
    """A profile or weight that cannot be used: named, with the reason."""


def load_profiles(path: Path | None = None) -> dict[str, dict[str, float]]:
    text = path.read_text() if path else resources.files("optimizer").joinpath(
        "profiles.yaml").read_text()
    where = str(path) if path else "built-in profiles.yaml"
    data = yaml.safe_load(text) or {}
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ConfigError(f"{where}: profiles: must be a non-empty mapping of name -> weights")
    out = {}
    for name, weights in profiles.items():
        out[str(name)] = _check_weights(weights, f"{where}: profiles.{name}")
    return out


def _check_weights(weights: object, where: str) -> dict[str, float]:
    if not isinstance(weights, dict):
        raise ConfigError(f"{where}: must be a mapping of term -> weight")
    out = {}
    for term, w in weights.items():
        if term not in TERMS:
            raise ConfigError(f"{where}.{term}: unknown term; known: {', '.join(TERMS)}")
        if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
            raise ConfigError(f"{where}.{term}: {w!r}: must be a number >= 0")
        out[str(term)] = float(w)
    return out


def resolve_weights(cfg: SolveConfig) -> tuple[str, dict[str, float]]:
    """(profile name, weight per term) after overrides."""
    name = cfg.profile or ("pack" if cfg.strategy == "MostAllocated" else "balanced")
    profiles = load_profiles(cfg.profiles_file)
    if name not in profiles:
        raise ConfigError(f"profile {name!r}: not found; known: {', '.join(sorted(profiles))}")
    weights = {t: 0.0 for t in TERMS} | profiles[name]
    weights |= _check_weights(cfg.weights, "weights")
    return name, weights
