"""Label and node selectors, validated the way the API server validates them.

Kubernetes rejects a malformed selector at admission; we reject it at load, with the same
wording, so a plan is never built on a selector kube would not have accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from models.meta import KubeModel

NodeSelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
LabelSelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]


def parse_int64(text: str) -> int | None:
    """strconv.ParseInt(s, 10, 64), as labels.Requirement uses for Gt/Lt; None if not one."""
    body = text[1:] if text[:1] in "+-" else text
    if not body.isascii() or not body.isdigit():
        return None
    v = int(text)
    return v if -(2**63) <= v < 2**63 else None


def _check_values(operator: str, values: list[str]) -> None:
    # ValidateNodeSelectorRequirement's wording; a non-integer Gt/Lt value is admitted by the
    # API server (the scheduler then matches the term against no node): see gt_lt_warnings
    if operator in ("In", "NotIn") and not values:
        raise ValueError("values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(
            "values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    if operator in ("Gt", "Lt") and len(values) != 1:
        raise ValueError(
            "values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")


class _Requirement(KubeModel):
    """key/operator/values, checked as the API server checks them."""

    key: str = Field(min_length=1)
    operator: str
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> _Requirement:
        _check_values(self.operator, self.values)
        return self


class NodeSelectorRequirement(_Requirement):
    operator: NodeSelectorOperator


class NodeSelectorFieldRequirement(NodeSelectorRequirement):
    """`matchFields`: kube supports only `metadata.name` with In/NotIn."""

    @model_validator(mode="after")
    def _field_valid(self) -> NodeSelectorFieldRequirement:
        if self.key != "metadata.name":
            raise ValueError(f"key: Invalid value: {self.key!r}: not a valid field selector key")
        if self.operator not in ("In", "NotIn"):
            raise ValueError(
                f"operator: Invalid value: {self.operator!r}: not a valid selector operator"
            )
        if len(self.values) != 1:
            raise ValueError(
                "values: Required value: must be only one value when `operator` is 'In' or "
                "'NotIn' for node field selector"
            )
        return self


class NodeSelectorTerm(KubeModel):
    match_expressions: list[NodeSelectorRequirement] = Field(default_factory=list)
    match_fields: list[NodeSelectorFieldRequirement] = Field(default_factory=list)


class NodeSelector(KubeModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1)


class PreferredSchedulingTerm(KubeModel):
    weight: int = Field(ge=1, le=100)
    preference: NodeSelectorTerm


class LabelSelectorRequirement(_Requirement):
    operator: LabelSelectorOperator


class LabelSelector(KubeModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """metav1.LabelSelectorAsSelector(sel).Matches(labels); an empty selector matches all."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for r in self.match_expressions:
            have = labels.get(r.key)
            ok = {"In": have is not None and have in r.values,
                  "NotIn": have is None or have not in r.values,
                  "Exists": have is not None,
                  "DoesNotExist": have is None}[r.operator]
            if not ok:
                return False
        return True
