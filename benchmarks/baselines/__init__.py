"""In-run baselines for the benchmarks: classic packing heuristics and a PuLP/CBC MILP.

Each returns an item -> bin assignment that the suite passes through the project verifier, the
same as agentplace's own plans.
"""

from benchmarks.baselines.heuristics import HEURISTICS, Packing, bfd, ffd
from benchmarks.baselines.milp import MilpResult, solve_milp

__all__ = ["HEURISTICS", "MilpResult", "Packing", "bfd", "ffd", "solve_milp"]
