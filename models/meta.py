"""Shared pieces of every Kubernetes object: the pydantic base and ObjectMeta."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored as kubectl adds many."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        # `tolerations:` with nothing after it is null in YAML; kube reads it as unset
        if isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if v is not None}
        return data


class OwnerReference(KubeModel):
    api_version: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool | None = None


class ObjectMeta(KubeModel):
    name: str = Field(min_length=1)
    namespace: str | None = None
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    owner_references: list[OwnerReference] = Field(default_factory=list)


class KubeObject(KubeModel):
    api_version: str = ""
    kind: str = ""
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def ref(self) -> str:
        """`ns/name` for namespaced objects, `name` for cluster-scoped ones."""
        return self.name

    def describe(self) -> str:
        return f"{self.kind or type(self).__name__} {self.ref}"


class NamespacedObject(KubeObject):
    """Objects that live in a namespace: referred to as `ns/name`, as kubectl does."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"
