"""Node: allocatable resources, labels, taints and cordon state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from models.meta import KubeModel, KubeObject
from models.quantity import QuantityField

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(KubeModel):
    key: str = Field(min_length=1)
    value: str = ""
    effect: TaintEffect

    def __str__(self) -> str:
        # kube's Taint.ToString(): key=value:effect, `=value` dropped when empty
        if self.value:
            return f"{self.key}={self.value}:{self.effect}"
        return f"{self.key}:{self.effect}"


class NodeSpec(KubeModel):
    unschedulable: bool = False
    taints: list[Taint] = Field(default_factory=list)
    provider_id: str | None = Field(default=None, alias="providerID")


class NodeStatus(KubeModel):
    capacity: dict[str, QuantityField] = Field(default_factory=dict)
    allocatable: dict[str, QuantityField] | None = None

    @field_validator("capacity", "allocatable")
    @classmethod
    def _non_negative(cls, v: dict[str, QuantityField] | None) -> dict[str, QuantityField] | None:
        for name, q in (v or {}).items():
            if q.value < 0:
                raise ValueError(
                    f"{name}: Invalid value: {q.text!r}: must be greater than or equal to 0"
                )
        return v


class Node(KubeObject):
    kind: str = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels

    def allocatable(self) -> dict[str, int]:
        """Allocatable in integer base units; kube's NodeInfo reads status.allocatable only."""
        source = self.status.allocatable if self.status.allocatable is not None else {}
        # memoised like Pod.requests: keyed by the identity of the mapping it reads
        memo = self.__dict__.get("_allocatable_memo")
        if memo is None or memo[0] != id(source):
            memo = (id(source), {name: q.units(name) for name, q in source.items()})
            self.__dict__["_allocatable_memo"] = memo  # not a field: eq and dumps ignore it
        return dict(memo[1])
