"""Kubernetes-shaped input models: what `kubectl get -o json|yaml` prints, validated once."""

from models.errors import InputError, InputErrors
from models.inventory import Inventory
from models.load import load_documents, load_paths
from models.node import Node, Taint
from models.pod import Pod, Toleration
from models.podgroup import PodGroup
from models.policy import Namespace, PodDisruptionBudget, PriorityClass, ResourceQuota
from models.quantity import Quantity, parse_quantity

__all__ = [
    "InputError",
    "InputErrors",
    "Inventory",
    "Namespace",
    "Node",
    "Pod",
    "PodDisruptionBudget",
    "PodGroup",
    "PriorityClass",
    "Quantity",
    "ResourceQuota",
    "Taint",
    "Toleration",
    "load_documents",
    "load_paths",
    "parse_quantity",
]
