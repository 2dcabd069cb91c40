"""PodGroup (scheduler-plugins Coscheduling, `scheduling.x-k8s.io/v1alpha1`): a gang's size.

Pods join a group with the label `scheduling.x-k8s.io/pod-group: <name>` in the PodGroup's
namespace; the group is scheduled all-or-nothing once `minMember` of its pods can run.
"""

from __future__ import annotations

from pydantic import Field

from models.meta import KubeModel, NamespacedObject
from models.quantity import QuantityField

INT32_MAX = 2**31 - 1


class PodGroupSpec(KubeModel):
    # minMember: at least this many pods (running plus placed) or none of the pending ones
    min_member: int = Field(default=0, ge=0, le=INT32_MAX)
    # minResources: read and kept, not enforced (Coscheduling's PreFilter only pre-checks it
    # against the whole cluster's free capacity, which the gang's own placements already do)
    min_resources: dict[str, QuantityField] = Field(default_factory=dict)
    schedule_timeout_seconds: int | None = None


class PodGroup(NamespacedObject):
    kind: str = "PodGroup"
    spec: PodGroupSpec = Field(default_factory=PodGroupSpec)
