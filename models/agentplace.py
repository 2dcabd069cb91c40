"""agentplace's own CRD-like kinds (apiVersion agentplace.io/v1alpha1): pricing and token budgets.

They ride in the same files as the Kubernetes objects, so one `-f examples/fleet` carries the
cluster, the agents and the economics.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from models.meta import KubeModel, KubeObject, NamespacedObject
from models.quantity import QuantityField

TOKENS_PER_HOUR = "agentplace.io/tokens-per-hour"
AGENT_CLASS = "agentplace.io/agent-class"
TENANT = "agentplace.io/tenant"


class NodeClass(KubeModel):
    """Nodes whose labels contain every `match` pair cost `price_per_hour`; the first matching
    class in the table wins, so order specific classes before general ones."""

    name: str = Field(min_length=1)
    match: dict[str, str] = Field(default_factory=dict)
    price_per_hour: Decimal = Field(ge=0)
    # tokens per second one agent serves on this class, by agent class; "default" for the rest
    tokens_per_second: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("tokens_per_second")
    @classmethod
    def _positive(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for k, tps in v.items():
            if tps <= 0:
                raise ValueError(f"{k}: Invalid value: {tps}: must be greater than 0")
        return v


class PricingSpec(KubeModel):
    currency: str = "USD"
    assumptions: str = ""
    node_classes: list[NodeClass] = Field(min_length=1)
    # expected tokens per hour by agent class label, when a pod has no tokens-per-hour annotation
    default_tokens_per_hour: dict[str, int] = Field(default_factory=dict)


class PricingTable(KubeObject):
    kind: str = "PricingTable"
    spec: PricingSpec


class TenantSelector(KubeModel):
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class TokenBudgetSpec(KubeModel):
    tenant: TenantSelector = Field(default_factory=TenantSelector)
    period: str = Field(default="1h", pattern=r"^\d+(s|m|h|d)$")
    tokens: QuantityField | None = None  # e.g. "2M"
    dollars: Decimal | None = Field(default=None, ge=0)  # in the PricingTable's currency

    @model_validator(mode="after")
    def _some_cap(self) -> TokenBudgetSpec:
        if self.tokens is None and self.dollars is None:
            raise ValueError("tokens: Required value: a budget needs tokens, dollars or both")
        if self.tokens is not None and (self.tokens.value < 0 or self.tokens.value.denominator != 1):
            raise ValueError(f"tokens: Invalid value: {self.tokens.text!r}: must be a whole "
                             "number of tokens >= 0")
        return self


class TokenBudgetStatus(KubeModel):
    """Spend already committed in the current period (carried across windows)."""

    spent_tokens: int = Field(default=0, ge=0)
    spent_dollars: Decimal = Field(default=Decimal(0), ge=0)


class TokenBudget(NamespacedObject):
    kind: str = "TokenBudget"
    spec: TokenBudgetSpec
    status: TokenBudgetStatus = Field(default_factory=TokenBudgetStatus)
