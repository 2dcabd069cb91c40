"""Read kubectl output (JSON or YAML, single or multi-document, `kind: List`) into an Inventory.

Every error of the whole input is collected and raised together as InputErrors; objects of
kinds agentplace does not use are skipped with a warning, never silently.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from models.agentplace import TOKENS_PER_HOUR, PricingTable, TokenBudget
from models.errors import InputError, InputErrors, from_validation_error
from models.gcpause import paused_gc
from models.inventory import Inventory
from models.meta import KubeObject
from models.node import Node
from models.pod import Pod
from models.podgroup import PodGroup
from models.policy import Namespace, PodDisruptionBudget, PriorityClass, ResourceQuota

KINDS: dict[str, type[KubeObject]] = {
    "Node": Node,
    "Pod": Pod,
    "ResourceQuota": ResourceQuota,
    "PriorityClass": PriorityClass,
    "PodDisruptionBudget": PodDisruptionBudget,
    "Namespace": Namespace,
    "PricingTable": PricingTable,
    "TokenBudget": TokenBudget,
    "PodGroup": PodGroup,  # scheduler-plugins Coscheduling (scheduling.x-k8s.io)
}
NAMESPACED = frozenset({"Pod", "ResourceQuota", "PodDisruptionBudget", "TokenBudget",
                        "PodGroup"})
SUFFIXES = (".yaml", ".yml", ".json")


def _describe_raw(kind: str, raw: dict[str, Any], where: str) -> str:
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not name:
        return f"{kind or 'object'} <unnamed, {where}>"
    if not kind:
        return f"object {name} ({where})"
    if kind in NAMESPACED:
        return f"{kind} {meta.get('namespace') or 'default'}/{name}"
    return f"{kind} {name}"


def _flatten(
    doc: Any, where: str, errors: list[InputError]
) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield (object, where) pairs, unwrapping `kind: List` and `PodList`-style wrappers."""
    if doc is None:
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _flatten(item, f"{where}[{i}]", errors)
        return
    if not isinstance(doc, dict):
        errors.append(InputError(f"document {where}", "", f"expected an object, got {doc!r:.60}"))
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            errors.append(InputError(f"{kind} {where}", "items", "must be a list"))
            return
        implied = kind[: -len("List")] or None
        for i, item in enumerate(items):
            if isinstance(item, dict) and implied and "kind" not in item:
                item = {**item, "kind": implied}
            yield from _flatten(item, f"{where} items[{i}]", errors)
        return
    yield doc, where


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """One line, `line 5, column 11: expected ',' or '}' (while parsing a flow mapping ...)`."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    out = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None:
        out += f" ({context} started at line {cmark.line + 1}, column {cmark.column + 1})"
    return out


def _parse_text(text: str, source: str, errors: list[InputError]) -> list[Any]:
    json_error = None
    if source.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            json_error = f"not valid JSON: {exc}"
        if source.endswith(".json"):
            errors.append(InputError(f"file {source}", "", json_error))
            return []
    # `{kind: Pod, ...}` is flow-style YAML, not JSON: it only looked like JSON
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        reason = json_error or f"not valid YAML: {_yaml_reason(exc)}"
        errors.append(InputError(f"file {source}", "", reason))
        return []


def load_documents(docs: Iterable[Any], source: str = "<input>") -> Inventory:
    """Validate already-parsed documents (the API uses this for request bodies)."""
    with paused_gc():
        return _load(((doc, f"{source}#{d}") for d, doc in enumerate(docs)), [])


def load_named(docs: Iterable[tuple[Any, str]]) -> Inventory:
    """Validate already-parsed documents, each with the name errors give its place by (the HTTP
    service's `cluster` and `pending`: `Pod <unnamed, pending[3]>`)."""
    return _load(docs, [])


def _load(docs: Iterable[tuple[Any, str]], errors: list[InputError]) -> Inventory:
    inv = Inventory()
    seen: dict[tuple[str, str, str], str] = {}
    skipped: dict[str, int] = {}
    for doc, origin in docs:
        for raw, where in _flatten(doc, origin, errors):
            kind = raw.get("kind")
            if not isinstance(kind, str) or not kind:
                errors.append(InputError(_describe_raw("", raw, where), "kind", "Required value"))
                continue
            model = KINDS.get(kind)
            if model is None:
                skipped[kind] = skipped.get(kind, 0) + 1
                continue
            label = _describe_raw(kind, raw, where)
            try:
                obj = model.model_validate(raw)
            except ValidationError as exc:
                errors.extend(from_validation_error(label, exc))
                continue
            key = (kind, obj.namespace if kind in NAMESPACED else "", obj.name)
            if key in seen:
                errors.append(InputError(label, "metadata.name",
                                         f"Duplicate value: also defined at {seen[key]}"))
                continue
            seen[key] = where
            _add(inv, obj)
    for kind, n in sorted(skipped.items()):
        inv.warnings.append(f"skipped {n} object(s) of kind {kind}: not used for placement")
    _check_references(inv, errors)
    if errors:
        raise InputErrors(errors)
    return inv


def _add(inv: Inventory, obj: KubeObject) -> None:
    match obj:
        case Node():
            inv.nodes.append(obj)
            if obj.status.allocatable is None:
                inv.warnings.append(
                    f"Node {obj.name}: status.allocatable is missing: kube-scheduler treats it "
                    "as zero, so nothing can be placed there"
                )
        case Pod():
            inv.pods.append(obj)
        case ResourceQuota():
            inv.quotas.append(obj)
        case PriorityClass():
            inv.priority_classes.append(obj)
        case PodDisruptionBudget():
            inv.pdbs.append(obj)
        case Namespace():
            inv.namespaces.append(obj)
        case PricingTable():
            inv.pricing.append(obj)
        case TokenBudget():
            inv.token_budgets.append(obj)
        case PodGroup():
            inv.pod_groups.append(obj)


def _check_references(inv: Inventory, errors: list[InputError]) -> None:
    """Cross-object rules kube's admission would have enforced."""
    defaults = [pc.name for pc in inv.priority_classes if pc.global_default]
    if len(defaults) > 1:
        errors.append(InputError(f"PriorityClass {defaults[1]}", "globalDefault",
                                 f"Forbidden: {defaults[0]} is already the global default"))
    if not inv.pricing:
        for b in inv.token_budgets:
            if b.spec.dollars is not None:
                errors.append(InputError(f"TokenBudget {b.ref}", "spec.dollars",
                                         "Invalid value: a currency budget needs a PricingTable "
                                         "in the input to price placements"))
    classes = {pc.name for pc in inv.priority_classes}
    builtin = {"system-cluster-critical", "system-node-critical"}
    for pod in inv.pods:
        tokens = pod.metadata.annotations.get(TOKENS_PER_HOUR)
        if tokens is not None and not (tokens.isascii() and tokens.isdigit()):
            errors.append(InputError(
                f"Pod {pod.ref}", f"metadata.annotations[{TOKENS_PER_HOUR}]",
                f"Invalid value: {tokens!r}: must be a non-negative integer (tokens per hour)"))
        name = pod.spec.priority_class_name
        if name and name not in classes | builtin and pod.spec.priority is None:
            errors.append(InputError(
                f"Pod {pod.ref}", "spec.priorityClassName",
                f"Not found: no PriorityClass with name {name} was found"))


def _read_path(path: str | Path, errors: list[InputError]) -> Iterator[tuple[str, str]]:
    if str(path) == "-":
        yield sys.stdin.read(), "<stdin>"
        return
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
        if not files:
            errors.append(InputError(f"directory {p}", "", "holds no .yaml, .yml or .json file"))
        for f in files:
            yield f.read_text(encoding="utf-8"), str(f)
    elif p.is_file():
        yield p.read_text(encoding="utf-8"), str(p)
    else:
        errors.append(InputError(f"path {p}", "", "no such file or directory"))


def load_paths(paths: Iterable[str | Path]) -> Inventory:
    """Load files, directories (recursively, *.yaml|*.yml|*.json) or `-` for stdin."""
    errors: list[InputError] = []
    docs: list[tuple[Any, str]] = []
    for path in paths:
        for text, source in _read_path(path, errors):
            parsed = _parse_text(text, source, errors)
            docs.extend((doc, f"{source}#{d}" if len(parsed) > 1 else source)
                        for d, doc in enumerate(parsed))
    with paused_gc():
        return _load(docs, errors)
