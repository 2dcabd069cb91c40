"""Batch placement: encode a window of pending agents and the cluster as one CP-SAT model."""

from optimizer.config import SolveConfig
from optimizer.plan import Plan, PlanInvalidError
from optimizer.solve import optimize

__all__ = ["Plan", "PlanInvalidError", "SolveConfig", "optimize"]
