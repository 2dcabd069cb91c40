#!/usr/bin/env python3
"""Generate the bundled `fleet` example: what `kubectl get -o yaml` prints for a small EKS cluster.

    python examples/fleet/generate.py            # rewrite nodes/running/pending/policies.yaml
    python examples/fleet/generate.py --stats    # also print per-pool free vs requested

Deterministic: one seeded random.Random, fixed snapshot time; same bytes on every run.
Needs only pyyaml and the standard library.

The story (see README.md): Monday 09:12 UTC, eu-west-1. The support-bots team scales out for
the EU morning, batch-eval launches its nightly-eval sweep a few hours late, and research
starts retrieval and GPU agents. ~100 agent pods arrive within ninety seconds; a handful of
older pods have been Unschedulable for a while and never will be.
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

SEED = 20241125
NOW = datetime(2024, 11, 25, 9, 12, 0, tzinfo=UTC)
HERE = Path(__file__).resolve().parent
REGION = "eu-west-1"
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
ZONE_ID = {"eu-west-1a": "euw1-az3", "eu-west-1b": "euw1-az1", "eu-west-1c": "euw1-az2"}
SUBNET_OCTET = {"eu-west-1a": 0, "eu-west-1b": 32, "eu-west-1c": 64}  # 10.0.X.0/19 per zone
REGISTRY = "registry.northwind.ai"
KUBELET = "v1.29.10-eks-94953ac"
MAX_PODS = 110

rng = random.Random(SEED)
_rv = 48_213_000


# ---------------------------------------------------------------------------------------------
# small helpers


def uid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def resource_version(old: bool = False) -> str:
    """Cluster-wide etcd revision: recent for busy objects, old for ones never touched since."""
    global _rv
    if old:
        return str(rng.randint(2_000_000, 30_000_000))
    _rv += rng.randint(3, 400)
    return str(_rv)


def ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphabet


def suffix(n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def hexid(n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def cpu_q(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def mem_q(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


# ---------------------------------------------------------------------------------------------
# YAML output that looks like kubectl's (sigs.k8s.io/yaml: sorted keys, "16" double-quoted)


class KubeDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # kubectl never writes anchors, even for repeated content


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    # go-yaml double-quotes a string whose plain form would read back as another type
    # (numbers, booleans, timestamps); everything else is plain, or single-quoted when needed.
    if not s or dumper.resolve(yaml.ScalarNode, s, (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", s)


KubeDumper.add_representer(str, _str)


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=KubeDumper, default_flow_style=False, sort_keys=True,
                     width=4096, allow_unicode=True)


def kube_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


# ---------------------------------------------------------------------------------------------
# nodes

# instance type: (vCPU, GiB memory, root volume GiB, (gpu product, count, gpu memory MiB) | None)
INSTANCES: dict[str, tuple[int, int, int, tuple[str, int, int] | None]] = {
    "m6i.2xlarge": (8, 32, 100, None),
    "m6i.4xlarge": (16, 64, 100, None),
    "c6i.8xlarge": (32, 64, 100, None),
    "r6i.2xlarge": (8, 64, 100, None),
    "r6i.4xlarge": (16, 128, 100, None),
    "g5.12xlarge": (48, 192, 500, ("NVIDIA-A10G", 4, 23028)),
    "p4de.24xlarge": (96, 1152, 500, ("NVIDIA-A100-SXM4-80GB", 8, 81920)),
}
ROOT_VOLUME_KI = {100: 104_845_292, 500: 524_275_692}  # xfs on gp3, as kubelet reports it


def eks_reserved_cpu_milli(vcpu: int) -> int:
    """EKS AMI bootstrap kube-reserved cpu: 6% of core 1, 1% of core 2, 0.5% of 3-4, 0.25% rest."""
    milli = 60 + (10 if vcpu >= 2 else 0) + 5 * min(max(vcpu - 2, 0), 2)
    return milli + (max(vcpu - 4, 0) * 25 + 9) // 10


@dataclass
class NodeSpec:
    key: str
    pool: str
    instance: str
    zone: str
    taints: list[dict[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    spot: bool = False
    name: str = ""
    ip: str = ""
    alloc: dict[str, int] = field(default_factory=dict)  # cpu milli, memory bytes, gpu, pods, eph


GPU_TAINT = {"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}
INFERENCE_TAINT = {"effect": "NoSchedule", "key": "dedicated", "value": "inference"}
SPOT_TAINT = {"effect": "PreferNoSchedule", "key": "agentplace.io/spot", "value": "true"}


def node_plan() -> list[NodeSpec]:
    plan: list[NodeSpec] = []
    for i in range(9):
        n = NodeSpec(f"G{i + 1}", "cpu-general", "m6i.4xlarge", ZONES[i % 3])
        plan.append(n)
    plan[3].unschedulable = True  # G4, eu-west-1b: cordoned for the kernel patch, drain blocked
    plan[3].annotations["agentplace.io/cordon-reason"] = (
        "kernel CVE-2024-50264 patch, drain blocked by support-bots/chat-router PDB (INC-4412)")
    plan[7].spot = True  # G8, eu-west-1c: the one spot instance in the pool
    plan[7].taints.append(SPOT_TAINT)
    for i in range(3):
        plan.append(NodeSpec(f"S{i + 1}", "cpu-general", "m6i.2xlarge", ZONES[(i + 1) % 3]))
    ded = NodeSpec("D1", "cpu-general", "c6i.8xlarge", "eu-west-1a", taints=[INFERENCE_TAINT])
    ded.labels["agentplace.io/dedicated"] = "inference"
    plan.append(ded)
    for i in range(6):
        plan.append(NodeSpec(f"H{i + 1}", "cpu-highmem", "r6i.2xlarge", ZONES[(i + 2) % 3]))
    for i in range(4):
        plan.append(NodeSpec(f"HH{i + 1}", "cpu-highmem", "r6i.4xlarge", ZONES[i % 3]))
    for i, z in enumerate(("eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1a")):
        plan.append(NodeSpec(f"A{i + 1}", "gpu", "g5.12xlarge", z, taints=[GPU_TAINT]))
    for i, z in enumerate(("eu-west-1b", "eu-west-1c")):
        plan.append(NodeSpec(f"P{i + 1}", "gpu", "p4de.24xlarge", z, taints=[GPU_TAINT]))
    return plan


def nodegroup(n: NodeSpec) -> str:
    short = n.instance.split(".")[0] + "-" + n.instance.split(".")[1].replace("xlarge", "xl")
    if n.labels.get("agentplace.io/dedicated"):
        return f"inference-dedicated-{short}"
    return f"{n.pool}-{'spot-' if n.spot else ''}{short}"


def build_node(n: NodeSpec, used_ips: set[str]) -> dict[str, Any]:
    vcpu, gib, disk, gpu = INSTANCES[n.instance]
    while True:
        o3 = SUBNET_OCTET[n.zone] + rng.randint(0, 31)
        o4 = rng.randint(4, 254)
        ip = f"10.0.{o3}.{o4}"
        if ip not in used_ips:
            used_ips.add(ip)
            break
    n.ip = ip
    n.name = f"ip-10-0-{o3}-{o4}.{REGION}.compute.internal"
    instance_id = "i-0" + hexid(16)
    created = NOW - timedelta(days=rng.randint(17, 60), hours=rng.randint(0, 23),
                              minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
    if n.spot:
        created = NOW - timedelta(hours=7, minutes=41, seconds=12)

    # memory: what the hypervisor leaves after firmware, then EKS kube-reserved + eviction
    cap_mem_ki = gib * 1_048_576 * 981_137 // 1_000_000 - rng.randint(0, 96) * 4
    reserved_ki = (255 + 11 * MAX_PODS + 100) * 1024
    alloc_mem_ki = cap_mem_ki - reserved_ki
    cap_cpu = vcpu * 1000
    alloc_cpu = cap_cpu - eks_reserved_cpu_milli(vcpu)
    eph_cap_ki = ROOT_VOLUME_KI[disk]
    eph_alloc = eph_cap_ki * 1024 * 9 // 10 - 2**30

    capacity = {
        "cpu": cpu_q(cap_cpu),
        "ephemeral-storage": f"{eph_cap_ki}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{cap_mem_ki}Ki",
        "pods": str(MAX_PODS),
    }
    allocatable = {
        "cpu": cpu_q(alloc_cpu),
        "ephemeral-storage": str(eph_alloc),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{alloc_mem_ki}Ki",
        "pods": str(MAX_PODS),
    }
    n.alloc = {"cpu": alloc_cpu, "memory": alloc_mem_ki * 1024, "pods": MAX_PODS,
               "ephemeral-storage": eph_alloc, "nvidia.com/gpu": 0}
    labels = {
        "agentplace.io/pool": n.pool,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": n.instance,
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": "SPOT" if n.spot else "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": nodegroup(n),
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": n.instance,
        "topology.k8s.aws/zone-id": ZONE_ID[n.zone],
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": n.zone,
        **n.labels,
    }
    if gpu:
        product, count, gpu_mem = gpu
        capacity["nvidia.com/gpu"] = str(count)
        allocatable["nvidia.com/gpu"] = str(count)
        n.alloc["nvidia.com/gpu"] = count
        labels |= {
            "nvidia.com/cuda.driver.major": "535",
            "nvidia.com/cuda.runtime.major": "12",
            "nvidia.com/gpu.count": str(count),
            "nvidia.com/gpu.family": "ampere",
            "nvidia.com/gpu.memory": str(gpu_mem),
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": product,
            "nvidia.com/mig.capable": "true" if "A100" in product else "false",
        }
    taints = []
    for t in n.taints:
        taints.append(dict(t))
    if n.unschedulable:
        taints.append({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable",
                       "timeAdded": ts(NOW - timedelta(minutes=52, seconds=9))})
    spec: dict[str, Any] = {"providerID": f"aws:///{n.zone}/{instance_id}"}
    if taints:
        spec["taints"] = taints
    if n.unschedulable:
        spec["unschedulable"] = True

    heartbeat = ts(NOW - timedelta(seconds=rng.randint(5, 55)))
    booted = ts(created + timedelta(seconds=rng.randint(40, 90)))

    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {"lastHeartbeatTime": heartbeat, "lastTransitionTime": booted, "message": message,
                "reason": reason, "status": status, "type": kind}

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "csi.volume.kubernetes.io/nodeid": f'{{"ebs.csi.aws.com":"{instance_id}"}}',
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                **n.annotations,
            },
            "creationTimestamp": ts(created),
            "labels": labels,
            "name": n.name,
            "resourceVersion": resource_version(),
            "uid": uid(),
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"address": ip, "type": "InternalIP"},
                {"address": n.name, "type": "InternalDNS"},
                {"address": n.name, "type": "Hostname"},
            ],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uid(),
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "5.10.228-219.884.amzn2.x86_64",
                "kubeProxyVersion": KUBELET,
                "kubeletVersion": KUBELET,
                "machineID": hexid(32),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2",
                "systemUUID": "ec2" + hexid(5) + "-" + hexid(4) + "-" + hexid(4) + "-" + hexid(4)
                              + "-" + hexid(12),
            },
        },
    }


# ---------------------------------------------------------------------------------------------
# pods


@dataclass
class C:
    """A container: requests in millicores / MiB / GPUs / GiB of ephemeral storage."""

    name: str
    image: str
    cpu: int
    mem: int
    gpu: int = 0
    eph: int = 0
    cpu_limit: int | None = None
    sidecar: bool = False
    args: list[str] = field(default_factory=list)
    port: int | None = None

    def requests(self) -> dict[str, int]:
        r = {"cpu": self.cpu, "memory": self.mem * 2**20}
        if self.gpu:
            r["nvidia.com/gpu"] = self.gpu
        if self.eph:
            r["ephemeral-storage"] = self.eph * 2**30
        return r


def pod_requests(containers: list[C], init: list[C]) -> dict[str, int]:
    """Same rule as models.pod.Pod.requests (kube's PodRequests, sidecar-aware)."""
    total: dict[str, int] = {}
    for c in containers:
        for k, v in c.requests().items():
            total[k] = total.get(k, 0) + v
    sidecars: dict[str, int] = {}
    peak: dict[str, int] = {}
    for c in init:
        if c.sidecar:
            for k, v in c.requests().items():
                total[k] = total.get(k, 0) + v
                sidecars[k] = sidecars.get(k, 0) + v
            during = dict(sidecars)
        else:
            during = dict(sidecars)
            for k, v in c.requests().items():
                during[k] = during.get(k, 0) + v
        for k, v in during.items():
            peak[k] = max(peak.get(k, 0), v)
    for k, v in peak.items():
        total[k] = max(total.get(k, 0), v)
    return total


PRIORITY = {"agent-critical": 100_000, "agent-standard": 1000, "agent-batch": 100}
PREEMPTION = {"agent-critical": "PreemptLowerPriority", "agent-standard": "PreemptLowerPriority",
              "agent-batch": "Never"}
DEFAULT_TOLERATIONS = [
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
     "tolerationSeconds": 300},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
     "tolerationSeconds": 300},
]
GPU_TOLERATION = {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}


@dataclass
class Owner:
    kind: str  # ReplicaSet, Job, StatefulSet or "" for a bare pod
    name: str
    app: str
    uid: str = ""
    hash: str = ""  # pod-template-hash for ReplicaSets


_owners: dict[tuple[str, str], Owner] = {}


def replicaset(ns: str, app: str, template_hash: str | None = None) -> Owner:
    key = (ns, app)
    if key not in _owners:
        h = template_hash or suffix(10)
        _owners[key] = Owner("ReplicaSet", f"{app}-{h}", app, uid(), h)
    return _owners[key]


def job(ns: str, name: str, app: str) -> Owner:
    key = (ns, name)
    if key not in _owners:
        _owners[key] = Owner("Job", name, app, uid())
    return _owners[key]


def statefulset(ns: str, app: str) -> Owner:
    key = (ns, "sts/" + app)
    if key not in _owners:
        _owners[key] = Owner("StatefulSet", app, app, uid(), f"{app}-{suffix(10)}")
    return _owners[key]


@dataclass
class PodSpec:
    ns: str
    owner: Owner
    agent_class: str
    containers: list[C]
    init: list[C] = field(default_factory=list)
    priority_class: str | None = "agent-standard"
    show_priority: bool = True  # admission resolved spec.priority (what kubectl shows)
    node_selector: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    spread: list[dict[str, Any]] = field(default_factory=list)  # topologySpreadConstraints
    extra_labels: dict[str, str] = field(default_factory=dict)
    node: str | None = None  # node key for running pods
    phase: str = "Pending"
    created: datetime = NOW
    ordinal: int | None = None  # StatefulSet ordinal
    version: str = ""
    automount: bool = True  # False: automountServiceAccountToken: false, no API token volume
    # filled in by build_pod
    name: str = ""
    requests: dict[str, int] = field(default_factory=dict)
    message: str | None = None


def container_dict(c: C, sa_volume: str | None) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": cpu_q(c.cpu), "memory": mem_q(c.mem)}
    limits: dict[str, str] = {"memory": mem_q(c.mem)}
    if c.cpu_limit:
        limits["cpu"] = cpu_q(c.cpu_limit)
    if c.gpu:
        requests["nvidia.com/gpu"] = str(c.gpu)
        limits["nvidia.com/gpu"] = str(c.gpu)
    if c.eph:
        requests["ephemeral-storage"] = f"{c.eph}Gi"
        limits["ephemeral-storage"] = f"{c.eph * 2}Gi"
    out: dict[str, Any] = {
        "image": c.image,
        "imagePullPolicy": "IfNotPresent",
        "name": c.name,
        "resources": {"limits": limits, "requests": requests},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if sa_volume:
        out["volumeMounts"] = [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                "name": sa_volume, "readOnly": True}]
    if c.args:
        out["args"] = list(c.args)
    if c.port:
        out["ports"] = [{"containerPort": c.port, "name": "http", "protocol": "TCP"}]
    if c.sidecar:
        out["restartPolicy"] = "Always"
    return out


def qos(containers: list[C], init: list[C]) -> str:
    guaranteed = all(c.cpu_limit == c.cpu for c in containers + init)
    return "Guaranteed" if guaranteed else "Burstable"


def build_pod(p: PodSpec, nodes: dict[str, NodeSpec]) -> dict[str, Any]:
    o = p.owner
    if o.kind == "ReplicaSet":
        p.name = f"{o.name}-{suffix(5)}"
    elif o.kind == "Job":
        p.name = f"{o.name}-{suffix(5)}"
    elif o.kind == "StatefulSet":
        p.name = f"{o.name}-{p.ordinal}"
    else:
        p.name = o.name
    p.requests = pod_requests(p.containers, p.init)
    labels = {
        "agentplace.io/agent-class": p.agent_class,
        "app.kubernetes.io/name": o.app,
        **p.extra_labels,
    }
    if p.version:
        labels["app.kubernetes.io/version"] = p.version
    if o.kind == "ReplicaSet":
        labels["pod-template-hash"] = o.hash
    elif o.kind == "Job":
        labels |= {"batch.kubernetes.io/controller-uid": o.uid, "batch.kubernetes.io/job-name": o.name,
                   "controller-uid": o.uid, "job-name": o.name}
    elif o.kind == "StatefulSet":
        labels |= {"apps.kubernetes.io/pod-index": str(p.ordinal), "controller-revision-hash": o.hash,
                   "statefulset.kubernetes.io/pod-name": p.name}
    metadata: dict[str, Any] = {
        "creationTimestamp": ts(p.created),
        "labels": labels,
        "name": p.name,
        "namespace": p.ns,
        "resourceVersion": resource_version(),
        "uid": uid(),
    }
    if o.kind in ("ReplicaSet", "Job"):
        metadata["generateName"] = f"{o.name}-"
    if o.kind:
        api = "batch/v1" if o.kind == "Job" else "apps/v1"
        metadata["ownerReferences"] = [{"apiVersion": api, "blockOwnerDeletion": True,
                                        "controller": True, "kind": o.kind, "name": o.name,
                                        "uid": o.uid}]
    sa_volume = f"kube-api-access-{suffix(5)}" if p.automount else None
    spec: dict[str, Any] = {
        "containers": [container_dict(c, sa_volume) for c in p.containers],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "restartPolicy": "Never" if o.kind == "Job" else "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": o.app,
        "serviceAccountName": o.app,
        "terminationGracePeriodSeconds": 30,
        "tolerations": [*p.tolerations, *DEFAULT_TOLERATIONS],
    }
    if sa_volume:
        spec["volumes"] = [{"name": sa_volume, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}],
                           "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1",
                                                     "fieldPath": "metadata.namespace"},
                                        "path": "namespace"}]}},
        ]}}]
    else:
        spec["automountServiceAccountToken"] = False
    if p.init:
        spec["initContainers"] = [container_dict(c, sa_volume) for c in p.init]
    if p.node_selector:
        spec["nodeSelector"] = dict(p.node_selector)
    if p.affinity:
        spec["affinity"] = p.affinity
    if p.spread:
        spec["topologySpreadConstraints"] = p.spread
    if o.kind == "StatefulSet":
        spec["hostname"] = p.name
        spec["subdomain"] = o.app
    if p.priority_class:
        spec["priorityClassName"] = p.priority_class
        if p.show_priority:
            spec["priority"] = PRIORITY[p.priority_class]
            spec["preemptionPolicy"] = PREEMPTION[p.priority_class]

    status: dict[str, Any] = {"phase": p.phase, "qosClass": qos(p.containers, p.init)}
    if p.node:
        n = nodes[p.node]
        spec["nodeName"] = n.name
        started = p.created + timedelta(seconds=rng.randint(2, 6))
        ready = started + timedelta(seconds=rng.randint(8, 95))
        pod_ip = f"10.0.{n.ip.split('.')[2]}.{rng.randint(4, 254)}"
        succeeded = p.phase == "Succeeded"
        cstatuses = []
        for c in p.containers:
            state: dict[str, Any]
            if succeeded:
                state = {"terminated": {"containerID": f"containerd://{hexid(64)}", "exitCode": 0,
                                        "finishedAt": ts(ready + timedelta(minutes=rng.randint(5, 40))),
                                        "reason": "Completed", "startedAt": ts(ready)}}
            else:
                state = {"running": {"startedAt": ts(ready)}}
            cstatuses.append({
                "containerID": f"containerd://{hexid(64)}",
                "image": c.image,
                "imageID": f"{c.image.split(':')[0]}@sha256:{hexid(64)}",
                "lastState": {},
                "name": c.name,
                "ready": not succeeded,
                "restartCount": 0 if succeeded else rng.choice((0, 0, 0, 0, 1)),
                "started": not succeeded,
                "state": state,
            })
        ok = "False" if succeeded else "True"

        def cond(kind: str, status_: str, at: datetime, reason: str | None = None) -> dict[str, Any]:
            d: dict[str, Any] = {"lastProbeTime": None, "lastTransitionTime": ts(at),
                                 "status": status_, "type": kind}
            if reason:
                d["reason"] = reason
            return d

        status |= {
            "conditions": [
                cond("PodReadyToStartContainers", ok, started),
                cond("Initialized", "True", started, "PodCompleted" if succeeded else None),
                cond("Ready", ok, ready, "PodCompleted" if succeeded else None),
                cond("ContainersReady", ok, ready, "PodCompleted" if succeeded else None),
                cond("PodScheduled", "True", p.created),
            ],
            "containerStatuses": cstatuses,
            "hostIP": n.ip,
            "hostIPs": [{"ip": n.ip}],
            "startTime": ts(started),
        }
        if not succeeded:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
    elif p.message:
        status["conditions"] = [{
            "lastProbeTime": None,
            "lastTransitionTime": ts(p.created + timedelta(seconds=1)),
            "message": p.message,
            "reason": "Unschedulable",
            "status": "False",
            "type": "PodScheduled",
        }]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def pool_in(*pools: str) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "agentplace.io/pool", "operator": "In", "values": list(pools)}]}]}}}


def gpu_affinity(*products: str, prefer_zone: str | None = None,
                 prefer_product: str | None = None) -> dict[str, Any]:
    aff: dict[str, Any] = {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "nvidia.com/gpu.product", "operator": "In", "values": list(products)}]}]}}
    preferred = []
    if prefer_zone:
        preferred.append({"weight": 50, "preference": {"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [prefer_zone]}]}})
    if prefer_product:
        preferred.append({"weight": 100, "preference": {"matchExpressions": [
            {"key": "nvidia.com/gpu.product", "operator": "In", "values": [prefer_product]}]}})
    if preferred:
        aff["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"nodeAffinity": aff}


def img(name: str, tag: str) -> str:
    return f"{REGISTRY}/agents/{name}:{tag}"


# ---------------------------------------------------------------------------------------------
# the running workload


def running_pods() -> list[PodSpec]:
    out: list[PodSpec] = []

    def add(ns: str, owner: Owner, cls: str, cs: list[C], node: str, hours: float, **kw: Any) -> None:
        created = NOW - timedelta(hours=hours, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        out.append(PodSpec(ns, owner, cls, cs, node=node, phase=kw.pop("phase", "Running"),
                           created=created, **kw))

    sb, rs, be = "support-bots", "research", "batch-eval"
    # support-bots: the customer-facing chat stack
    router = replicaset(sb, "chat-router")
    for node in ("G4", "G1"):  # the replica on the cordoned G4 is why its drain is stuck
        add(sb, router, "router", [C("router", img("chat-router", "2.3.0"), 3000, 6144, port=8080)],
            node, 70, priority_class="agent-critical", version="2.3.0")
    redis = statefulset(sb, "session-store")
    add(sb, redis, "state", [C("redis", "public.ecr.aws/docker/library/redis:7.2.5", 2000, 12288,
                               cpu_limit=2000, port=6379)], "G2", 300,
        priority_class="agent-critical", ordinal=0)
    front = replicaset(sb, "chat-frontline")
    for node in ("G3", "G5"):
        add(sb, front, "chat", [C("agent", img("chat-agent", "1.14.2"), 250, 512)],
            node, 26, priority_class="agent-critical", version="1.14.2", automount=False)
    rerank = replicaset(sb, "reranker")
    for node in ("A1", "A2"):
        add(sb, rerank, "gpu", [C("reranker", img("bge-reranker", "v2-m3-r4"), 4000, 16384, gpu=1)],
            node, 31, priority_class="agent-critical", tolerations=[GPU_TOLERATION],
            affinity=gpu_affinity("NVIDIA-A10G"))

    # research
    judge = replicaset(rs, "llm-judge-vllm")
    add(rs, judge, "gpu", [C("vllm", "vllm/vllm-openai:v0.6.3.post1", 32000, 327680, gpu=4,
                             args=["--model=meta-llama/Llama-3.1-70B-Instruct",
                                   "--tensor-parallel-size=4"], port=8000)], "P1", 55,
        priority_class="agent-critical", tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A100-SXM4-80GB"))
    lora = job(rs, "lora-finetune-qwen25-14b", "lora-finetune")
    add(rs, lora, "gpu", [C("trainer", img("trainer", "2024.11.3"), 16000, 131072, gpu=2)], "P1", 9,
        tolerations=[GPU_TOLERATION], affinity=gpu_affinity("NVIDIA-A100-SXM4-80GB"))
    emb = replicaset(rs, "embedding-server")
    add(rs, emb, "gpu", [C("tei", "ghcr.io/huggingface/text-embeddings-inference:1.5", 8000, 65536,
                           gpu=2, port=8080)], "P2", 120, tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A100-SXM4-80GB"))
    vision = replicaset(rs, "vision-agent")
    add(rs, vision, "gpu", [C("agent", img("vision-agent", "0.4.1"), 8000, 32768, gpu=2)], "A3", 20,
        tolerations=[GPU_TOLERATION], affinity=gpu_affinity("NVIDIA-A10G", "NVIDIA-A100-SXM4-80GB"))
    vec = statefulset(rs, "vector-store")
    for i, node in enumerate(("HH1", "HH2")):
        add(rs, vec, "state", [C("qdrant", "qdrant/qdrant:v1.12.4", 4000, 49152, cpu_limit=4000,
                                 port=6333)], node, 400, ordinal=i,
            node_selector={"agentplace.io/pool": "cpu-highmem"})
    graph = statefulset(rs, "memory-graph")
    add(rs, graph, "state", [C("neo4j", "neo4j:5.24-enterprise", 6000, 98304, cpu_limit=6000)],
        "HH4", 400, ordinal=0, node_selector={"agentplace.io/pool": "cpu-highmem"})
    add(rs, Owner("", "notebook-agent-dev-mkowalski", "notebook-agent"), "tool",
        [C("notebook", img("notebook-agent", "dev"), 14000, 49152)], "G6", 3)
    crawler = replicaset(rs, "web-crawler")
    for node in ("G7", "G9"):
        add(rs, crawler, "tool", [C("crawler", img("web-crawler", "3.1.0"), 5000, 8192)], node, 14,
            node_selector={"agentplace.io/pool": "cpu-general"}, automount=False)

    # batch-eval
    reward = replicaset(be, "reward-model-server")
    add(be, reward, "gpu", [C("server", img("reward-model", "rm-8b-v3"), 24000, 262144, gpu=4,
                              port=8000)], "P2", 40, tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A100-SXM4-80GB"))
    orch = replicaset(be, "eval-orchestrator")
    add(be, orch, "tool", [C("orchestrator", img("eval-orchestrator", "1.8.0"), 8000, 12288)], "G9", 90,
        node_selector={"agentplace.io/pool": "cpu-general"})
    gaia = job(be, "nightly-eval-gaia-28873440", "nightly-eval")
    for node in ("G1", "G2", "G5", "G8", "G3"):
        add(be, gaia, "eval", [C("runner", img("eval-runner", "1.8.0"), 6000, 12288)], node, 6,
            priority_class="agent-batch", node_selector={"agentplace.io/pool": "cpu-general"},
            automount=False)
    scorer = job(be, "gpu-scorer-28873440", "gpu-scorer")
    add(be, scorer, "gpu", [C("scorer", img("eval-runner", "1.8.0-cuda"), 4000, 16384, gpu=1)], "A4", 6,
        priority_class="agent-batch", tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A10G"))
    # finished pods kubectl still lists: they hold nothing
    warm = job(be, "nightly-eval-warmup-28873440", "nightly-eval")
    add(be, warm, "eval", [C("runner", img("eval-runner", "1.8.0"), 2000, 4096)], "G3", 7,
        phase="Succeeded", priority_class="agent-batch", automount=False,
        node_selector={"agentplace.io/pool": "cpu-general"})
    sync = job(rs, "dataset-sync-28873380", "dataset-sync")
    add(rs, sync, "tool", [C("sync", img("dataset-sync", "0.3.2"), 1000, 2048)], "H5", 8,
        phase="Succeeded")
    return out


# ---------------------------------------------------------------------------------------------
# the burst of pending agents


def pending_pods() -> list[PodSpec]:
    out: list[PodSpec] = []
    t0 = NOW - timedelta(seconds=95)
    clock = [t0]

    def add(ns: str, owner: Owner, cls: str, cs: list[C], n: int, gap: tuple[int, int] = (0, 2),
            **kw: Any) -> None:
        show = kw.pop("_show", None)
        for _ in range(n):
            clock[0] += timedelta(seconds=rng.randint(*gap))
            spec = PodSpec(ns, owner, cls, list(cs), created=clock[0], automount=False, **kw)
            if show is not None:
                spec.show_priority = show
            out.append(spec)

    sb, rs, be = "support-bots", "research", "batch-eval"
    general = {"agentplace.io/pool": "cpu-general"}

    # support-bots: inference routers first (critical, may run anywhere incl. the dedicated node)
    router = replicaset(sb, "inference-router")
    add(sb, router, "inference", [C("router", img("inference-router", "1.2.0"), 4000, 8192, port=8080)],
        2, priority_class="agent-critical",
        tolerations=[{"effect": "NoSchedule", "key": "dedicated", "operator": "Exists"}],
        version="1.2.0")
    # chat-frontline scales 4 -> 30 for the EU morning
    front = replicaset(sb, "chat-frontline")
    add(sb, front, "chat", [C("agent", img("chat-agent", "1.14.2"), 250, 512)], 17,
        priority_class="agent-critical", node_selector=general, version="1.14.2")
    # realtime voice agents: only the dedicated inference node will do
    voice = replicaset(sb, "realtime-voice-agent")
    add(sb, voice, "inference", [C("agent", img("voice-agent", "0.9.4"), 7000, 14336, cpu_limit=7000)],
        4, priority_class="agent-critical",
        node_selector={"agentplace.io/dedicated": "inference"},
        tolerations=[dict(INFERENCE_TAINT, operator="Equal")], version="0.9.4")
    billing = replicaset(sb, "chat-billing")
    add(sb, billing, "chat", [C("agent", img("chat-agent", "1.14.2"), 250, 512)], 7,
        priority_class="agent-critical", node_selector=general, version="1.14.2")
    # ticket triage: tool agent with a native sidecar (restartable init container)
    triage = replicaset(sb, "ticket-triage")
    add(sb, triage, "tool",
        [C("agent", img("triage-agent", "2.0.1"), 1000, 2048)], 4,
        init=[C("otel-collector", "otel/opentelemetry-collector-contrib:0.111.0", 100, 128,
                sidecar=True)],
        node_selector=general, version="2.0.1")

    # research: tool-using agents
    web = replicaset(rs, "web-researcher")
    # spread over the zones, softly: a zone outage should not take all of them
    add(rs, web, "tool", [C("agent", img("web-researcher", "0.12.0"), 1000, 2048)], 9,
        node_selector=general, version="0.12.0",
        spread=[{"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web-researcher"}},
                 "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                 "whenUnsatisfiable": "ScheduleAnyway"}])
    # code runners clone + index a repo in an init container that needs more than the agent
    coder = replicaset(rs, "code-runner")
    add(rs, coder, "tool", [C("agent", img("code-runner", "0.7.3"), 1000, 2048, eph=8)], 8,
        init=[C("clone-and-index", img("repo-indexer", "0.7.3"), 1500, 3072, eph=8)],
        affinity=pool_in("cpu-general", "cpu-highmem"), version="0.7.3")
    # memory-heavy retrieval agents pinned to the highmem pool
    retr = replicaset(rs, "retrieval-agent")
    # one per host if it can be helped: they compete for memory bandwidth
    add(rs, retr, "retrieval", [C("agent", img("retrieval-agent", "1.3.0"), 2000, 16384)], 10,
        node_selector={"agentplace.io/pool": "cpu-highmem"}, version="1.3.0", _show=False,
        affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "retrieval-agent"}},
                "topologyKey": "kubernetes.io/hostname"}}]}})
    # GPU agents: the flexible ones were submitted first
    flex = replicaset(rs, "multimodal-agent")
    add(rs, flex, "gpu", [C("agent", img("multimodal-agent", "0.5.0"), 6000, 24576, gpu=1)], 3,
        tolerations=[GPU_TOLERATION], version="0.5.0",
        affinity=gpu_affinity("NVIDIA-A10G", "NVIDIA-A100-SXM4-80GB",
                              prefer_product="NVIDIA-A100-SXM4-80GB"))
    a10 = replicaset(rs, "vision-agent")
    add(rs, a10, "gpu", [C("agent", img("vision-agent", "0.4.1"), 8000, 32768, gpu=2)], 2,
        tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A10G", "NVIDIA-A100-SXM4-80GB",
                              prefer_product="NVIDIA-A100-SXM4-80GB"))
    a100 = job(rs, "rl-rollout-llama31-8b", "rl-rollout")
    add(rs, a100, "gpu", [C("rollout", img("trainer", "2024.11.3"), 12000, 98304, gpu=2)], 2,
        tolerations=[{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Equal",
                      "value": "present"}],
        affinity=gpu_affinity("NVIDIA-A100-SXM4-80GB", prefer_zone="eu-west-1b"))

    # batch-eval: the nightly sweep, late; agent-batch never preempts
    swe = job(be, "nightly-eval-swebench-28873500", "nightly-eval")
    add(be, swe, "eval", [C("runner", img("eval-runner", "1.8.0"), 2000, 4096)], 13,
        priority_class="agent-batch", node_selector=general, _show=False)
    tool = job(be, "nightly-eval-toolbench-28873500", "nightly-eval")
    add(be, tool, "eval", [C("runner", img("eval-runner", "1.8.0"), 3000, 6144)], 9,
        priority_class="agent-batch", node_selector=general)
    judge = job(be, "gpu-judge-28873500", "gpu-judge")
    add(be, judge, "gpu", [C("judge", img("eval-runner", "1.8.0-cuda"), 4000, 16384, gpu=1)], 3,
        priority_class="agent-batch", tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A10G"))
    # last in: a critical speech-to-text server wants a whole A10G node (4 GPUs); the only one
    # it can get is the node where batch-eval's gpu-scorer holds one GPU: it preempts that
    stt = replicaset(sb, "speech-to-text")
    add(sb, stt, "gpu", [C("whisper", img("speech-to-text", "3.0.1"), 16000, 65536, gpu=4, port=8080)],
        1, priority_class="agent-critical", tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity("NVIDIA-A10G"), version="3.0.1")
    return out


def impossible_pods() -> list[PodSpec]:
    """Agents no placement can satisfy; older, already marked Unschedulable by kube-scheduler."""
    out: list[PodSpec] = []
    rs, be = "research", "batch-eval"

    def add(ns: str, owner: Owner, cls: str, cs: list[C], minutes: int, **kw: Any) -> None:
        created = NOW - timedelta(minutes=minutes, seconds=rng.randint(0, 59))
        out.append(PodSpec(ns, owner, cls, cs, created=created, automount=False, **kw))

    # 3 A100s on one node: each p4de has only 2 free and nothing lower-priority to preempt
    add(rs, job(rs, "finetune-judge-70b", "finetune-judge"), "gpu",
        [C("trainer", img("trainer", "2024.11.3"), 24000, 393216, gpu=3)], 38,
        tolerations=[GPU_TOLERATION], affinity=gpu_affinity("NVIDIA-A100-SXM4-80GB"))
    # an H100 nobody has bought yet
    add(rs, replicaset(rs, "vision-agent-h100"), "gpu",
        [C("agent", img("vision-agent", "0.5.0-h100"), 8000, 32768, gpu=1)], 31,
        tolerations=[GPU_TOLERATION], affinity=gpu_affinity("NVIDIA-H100-80GB-HBM3"))
    # built for Graviton only; this cluster is all amd64
    add(rs, replicaset(rs, "browser-agent-arm64"), "tool",
        [C("agent", img("browser-agent", "0.2.0-arm64"), 1000, 2048)], 24,
        node_selector={"kubernetes.io/arch": "arm64"})
    # 20 cores in one pod: larger than any node it tolerates
    add(rs, Owner("", "sim-world-agent-bench", "sim-world-agent"), "tool",
        [C("sim", img("sim-world", "0.1.0"), 20000, 32768)], 19)
    # 160Gi retrieval index: more than any r6i.4xlarge can hold
    add(rs, replicaset(rs, "longctx-retrieval"), "retrieval",
        [C("agent", img("retrieval-agent", "1.3.0-longctx"), 4000, 163840)], 15,
        node_selector={"agentplace.io/pool": "cpu-highmem"})
    # asks for a GPU but forgot the toleration
    add(be, job(be, "gpu-judge-adhoc-vv2", "gpu-judge"), "gpu",
        [C("judge", img("eval-runner", "1.8.0-cuda"), 4000, 16384, gpu=1)], 11,
        priority_class="agent-batch")
    return out


# ---------------------------------------------------------------------------------------------
# a tiny kube-scheduler model: filters (for Unschedulable messages) and a greedy baseline


def tolerates(p: PodSpec, taint: dict[str, str]) -> bool:
    for t in p.tolerations + DEFAULT_TOLERATIONS:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if not t.get("key"):
            if t.get("operator") == "Exists":
                return True
            continue
        if t["key"] != taint["key"]:
            continue
        if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_labels(n: NodeSpec, built: dict[str, Any]) -> dict[str, str]:
    return built["metadata"]["labels"]


def matches_affinity(p: PodSpec, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in p.node_selector.items()):
        return False
    req = ((p.affinity or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if not req:
        return True
    for term in req["nodeSelectorTerms"]:
        ok = True
        for e in term.get("matchExpressions", []):
            v = labels.get(e["key"])
            if e["operator"] == "In" and v not in e["values"]:
                ok = False
            elif e["operator"] == "NotIn" and v in e["values"]:
                ok = False
        if ok:
            return True
    return False


def preferred_weight(p: PodSpec, labels: dict[str, str]) -> int:
    terms = ((p.affinity or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution") or []
    return sum(t["weight"] for t in terms
               if all(labels.get(e["key"]) in e["values"]
                      for e in t["preference"]["matchExpressions"]))


def filter_reasons(p: PodSpec, n: NodeSpec, labels: dict[str, str],
                   used: dict[str, int]) -> tuple[list[str], bool]:
    """kube-scheduler's first failing filter on this node: (reasons, resolvable by preemption)."""
    if n.unschedulable:
        return ["node(s) were unschedulable"], False
    for t in n.taints:
        if t["effect"] in ("NoSchedule", "NoExecute") and not tolerates(p, t):
            return [f"node(s) had untolerated taint {{{t['key']}: {t.get('value', '')}}}"], False
    if not matches_affinity(p, labels):
        return ["node(s) didn't match Pod's node affinity/selector"], False
    reasons = []
    if used.get("pods", 0) + 1 > n.alloc["pods"]:
        reasons.append("Too many pods")
    for r in ("cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"):
        want = p.requests.get(r, 0)
        if want and used.get(r, 0) + want > n.alloc.get(r, 0):
            reasons.append(f"Insufficient {r}")
    return reasons, True


def unschedulable_message(p: PodSpec, plan: list[NodeSpec], built: dict[str, dict[str, Any]],
                          used: dict[str, dict[str, int]], lower_prio_used: dict[str, dict[str, int]]
                          ) -> str | None:
    counts: dict[str, int] = {}
    not_helpful = no_victims = 0
    fits = False
    for n in plan:
        reasons, resolvable = filter_reasons(p, n, node_labels(n, built[n.key]), used[n.key])
        if not reasons:
            fits = True
            continue
        for r in reasons:
            counts[r] = counts.get(r, 0) + 1
        if not resolvable:
            not_helpful += 1
        else:
            freed = {r: used[n.key].get(r, 0) - lower_prio_used[n.key].get(r, 0) for r in used[n.key]}
            if not filter_reasons(p, n, node_labels(n, built[n.key]), freed)[0]:
                raise SystemExit(f"{p.name}: preemption on {n.name} would help; not impossible")
            no_victims += 1
    if fits:
        return None
    msg = f"0/{len(plan)} nodes are available: " + ", ".join(
        sorted(f"{v} {k}" for k, v in counts.items())) + "."
    if PREEMPTION.get(p.priority_class or "agent-standard") == "Never":
        return msg + " preemption: not eligible due to preemptionPolicy=Never."
    parts = []
    if no_victims:
        parts.append(f"{no_victims} No preemption victims found for incoming pod")
    if not_helpful:
        parts.append(f"{not_helpful} Preemption is not helpful for scheduling")
    return msg + f" preemption: 0/{len(plan)} nodes are available: {', '.join(sorted(parts))}."


def greedy(pending: list[PodSpec], plan: list[NodeSpec], built: dict[str, dict[str, Any]],
           used: dict[str, dict[str, int]]) -> list[PodSpec]:
    """kube-scheduler's default one-at-a-time behaviour, roughly: queue order, LeastAllocated."""
    used = {k: dict(v) for k, v in used.items()}
    queue = sorted(pending, key=lambda p: (-PRIORITY[p.priority_class or "agent-standard"],
                                           p.created, p.ns, p.name))
    failed = []
    for p in queue:
        best, best_score = None, -1.0
        for n in plan:
            if filter_reasons(p, n, node_labels(n, built[n.key]), used[n.key])[0]:
                continue
            u = used[n.key]
            score = sum((n.alloc[r] - u.get(r, 0) - p.requests.get(r, 0)) / n.alloc[r]
                        for r in ("cpu", "memory")) * 50
            if any(t["effect"] == "PreferNoSchedule" and not tolerates(p, t) for t in n.taints):
                score -= 100
            score += preferred_weight(p, node_labels(n, built[n.key]))
            if score > best_score:
                best, best_score = n, score
        if best is None:
            failed.append(p)
            continue
        for r, v in p.requests.items():
            used[best.key][r] = used[best.key].get(r, 0) + v
        used[best.key]["pods"] = used[best.key].get("pods", 0) + 1
    return failed


# ---------------------------------------------------------------------------------------------
# policies


def roundup(v: int, step: int) -> int:
    return -(-v // step) * step


def policies(pods: list[PodSpec], pending: list[PodSpec]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    teams = {"research": "ml-research", "support-bots": "support-platform", "batch-eval": "evals"}
    ns_created = {ns: NOW - timedelta(days=rng.randint(120, 300), minutes=rng.randint(0, 1439),
                                      seconds=rng.randint(0, 59)) for ns in teams}
    for ns, team in teams.items():
        docs.append({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"creationTimestamp": ts(ns_created[ns]),
                         "labels": {"agentplace.io/team": team, "kubernetes.io/metadata.name": ns,
                                    "pod-security.kubernetes.io/enforce": "baseline"},
                         "name": ns, "resourceVersion": resource_version(old=True), "uid": uid()},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        })
    created = NOW - timedelta(days=211, hours=3, minutes=17, seconds=42)
    for name, value, default, pre, desc in (
        ("agent-critical", 100_000, False, "PreemptLowerPriority",
         "Customer-facing agents and the services they call. May preempt anything below."),
        ("agent-standard", 1000, True, "PreemptLowerPriority",
         "Default for agent workloads."),
        ("agent-batch", 100, False, "Never",
         "Evaluation sweeps and other batch agents. Waits for room, never preempts."),
    ):
        pc: dict[str, Any] = {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "description": desc,
            "metadata": {"creationTimestamp": ts(created), "name": name,
                         "resourceVersion": resource_version(old=True), "uid": uid()},
            "preemptionPolicy": pre, "value": value,
        }
        if default:
            pc["globalDefault"] = True
        docs.append(pc)

    # status.used counts every non-terminal pod, pending ones included (kube charges quota at
    # admission). hard leaves room for the burst a second time over, rounded up, so a tool
    # that adds pending requests on top of status.used still finds the quota roomy.
    for ns in teams:
        live = [p for p in pods + pending if p.ns == ns and p.phase not in ("Succeeded", "Failed")]
        cpu = sum(p.requests.get("cpu", 0) for p in live)
        mem = sum(p.requests.get("memory", 0) for p in live)
        gpu = sum(p.requests.get("nvidia.com/gpu", 0) for p in live)
        pend = [p for p in pending if p.ns == ns]
        hcpu = roundup(cpu + sum(p.requests.get("cpu", 0) for p in pend), 50_000) // 1000
        hmem = roundup(mem + sum(p.requests.get("memory", 0) for p in pend), 256 * 2**30) // 2**30
        hgpu = roundup(gpu + sum(p.requests.get("nvidia.com/gpu", 0) for p in pend), 8)
        hpods = roundup(len(live) + len(pend), 50)
        assert hcpu * 1000 >= cpu + sum(p.requests.get("cpu", 0) for p in pend), ns
        assert hmem * 2**30 >= mem + sum(p.requests.get("memory", 0) for p in pend), ns
        assert hgpu >= gpu + sum(p.requests.get("nvidia.com/gpu", 0) for p in pend), ns
        assert hpods >= len(live) + len(pend), ns
        hard = {"pods": str(hpods), "requests.cpu": str(hcpu), "requests.memory": f"{hmem}Gi",
                "requests.nvidia.com/gpu": str(hgpu)}
        docs.append({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"creationTimestamp": ts(ns_created[ns] + timedelta(minutes=3)),
                         "name": "agent-quota", "namespace": ns,
                         "resourceVersion": resource_version(), "uid": uid()},
            "spec": {"hard": hard},
            "status": {"hard": hard, "used": {
                "pods": str(len(live)), "requests.cpu": cpu_q(cpu),
                "requests.memory": mem_q(mem // 2**20), "requests.nvidia.com/gpu": str(gpu)}},
        })

    routers = [p for p in pods if p.owner.app == "chat-router" and p.node]
    docs.append({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"creationTimestamp": ts(NOW - timedelta(days=97, hours=5, minutes=8)),
                     "generation": 1,
                     "name": "chat-router", "namespace": "support-bots",
                     "resourceVersion": resource_version(), "uid": uid()},
        "spec": {"minAvailable": 2,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "chat-router"}}},
        "status": {
            "conditions": [{"lastTransitionTime": ts(NOW - timedelta(hours=69, minutes=11, seconds=3)),
                            "message": "", "observedGeneration": 1, "reason": "InsufficientPods",
                            "status": "False", "type": "DisruptionAllowed"}],
            "currentHealthy": len(routers), "desiredHealthy": 2, "disruptionsAllowed": 0,
            "expectedPods": len(routers), "observedGeneration": 1,
        },
    })
    return docs


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="directory to write (default: here)")
    ap.add_argument("--stats", action="store_true", help="print per-pool free vs requested")
    args = ap.parse_args()

    plan = node_plan()
    ips: set[str] = set()
    built = {n.key: build_node(n, ips) for n in plan}
    nodes_by_key = {n.key: n for n in plan}

    running = running_pods()
    running_docs = [build_pod(p, nodes_by_key) for p in running]
    used: dict[str, dict[str, int]] = {n.key: {} for n in plan}
    lower: dict[str, dict[str, dict[str, int]]] = {}  # priority -> node -> usage below it
    for p in running:
        if p.phase != "Running":
            continue
        for r, v in [*p.requests.items(), ("pods", 1)]:
            used[p.node][r] = used[p.node].get(r, 0) + v  # type: ignore[index]

    def usage_below(prio: int) -> dict[str, dict[str, int]]:
        if prio not in lower:
            acc: dict[str, dict[str, int]] = {n.key: {} for n in plan}
            for p in running:
                if p.phase == "Running" and PRIORITY[p.priority_class or "agent-standard"] < prio:
                    for r, v in [*p.requests.items(), ("pods", 1)]:
                        acc[p.node][r] = acc[p.node].get(r, 0) + v  # type: ignore[index]
            lower[prio] = acc
        return lower[prio]

    burst = pending_pods()
    stuck = impossible_pods()
    pending_docs = []
    # build in creation order so names and resourceVersions read naturally
    for p in sorted(burst + stuck, key=lambda q: q.created):
        if any(p is s for s in stuck):
            p.requests = pod_requests(p.containers, p.init)
            p.message = unschedulable_message(
                p, plan, built, used, usage_below(PRIORITY[p.priority_class or "agent-standard"]))
            assert p.message, f"{p.owner.name} is placeable"
        pending_docs.append(build_pod(p, nodes_by_key))

    all_pending = burst + stuck
    docs = policies(running, all_pending)
    node_docs = [built[n.key] for n in sorted(plan, key=lambda n: n.name)]

    args.out.mkdir(parents=True, exist_ok=True)
    header = "# generated by examples/fleet/generate.py; do not edit by hand\n"
    (args.out / "nodes.yaml").write_text(header + dump(kube_list(node_docs)), encoding="utf-8")
    (args.out / "running.yaml").write_text(header + dump(kube_list(running_docs)), encoding="utf-8")
    (args.out / "pending.yaml").write_text(header + dump(kube_list(pending_docs)), encoding="utf-8")
    (args.out / "policies.yaml").write_text(
        header + "---\n".join(dump(d) for d in docs), encoding="utf-8")

    if args.stats:
        print_stats(plan, built, used, running, burst, stuck)
    return 0


def print_stats(plan: list[NodeSpec], built: dict[str, dict[str, Any]],
                used: dict[str, dict[str, int]], running: list[PodSpec], burst: list[PodSpec],
                stuck: list[PodSpec]) -> None:
    w = sys.stdout.write
    live = [p for p in running if p.phase == "Running"]
    w(f"nodes {len(plan)}, running {len(live)} (+{len(running) - len(live)} Succeeded), "
      f"pending {len(burst) + len(stuck)} ({len(stuck)} impossible)\n")
    groups = {
        "cpu-general (schedulable, untainted)": lambda n: n.pool == "cpu-general"
        and not n.unschedulable and not any(t["effect"] == "NoSchedule" for t in n.taints),
        "cpu-general dedicated=inference": lambda n: n.key == "D1",
        "cpu-general cordoned": lambda n: n.unschedulable,
        "cpu-highmem": lambda n: n.pool == "cpu-highmem",
        "gpu": lambda n: n.pool == "gpu",
    }

    def placed_on(p: PodSpec) -> str:
        sel = p.node_selector
        if sel.get("agentplace.io/dedicated") == "inference":
            return "cpu-general dedicated=inference"
        if sel.get("agentplace.io/pool") == "cpu-general":
            return "cpu-general (schedulable, untainted)"
        if sel.get("agentplace.io/pool") == "cpu-highmem":
            return "cpu-highmem"
        if p.requests.get("nvidia.com/gpu"):
            return "gpu"
        return "flexible (general/highmem/dedicated)"

    demand: dict[str, dict[str, int]] = {}
    for p in burst:
        d = demand.setdefault(placed_on(p), {})
        for r, v in p.requests.items():
            d[r] = d.get(r, 0) + v
        d["n"] = d.get("n", 0) + 1
    for label, pred in groups.items():
        ns = [n for n in plan if pred(n)]
        free = {r: sum(n.alloc.get(r, 0) - used[n.key].get(r, 0) for n in ns)
                for r in ("cpu", "memory", "nvidia.com/gpu")}
        d = demand.get(label, {})
        w(f"{label:40s} nodes {len(ns):2d} free cpu {free['cpu'] / 1000:7.2f} "
          f"mem {free['memory'] / 2**30:7.1f}Gi gpu {free['nvidia.com/gpu']:2d} | pinned pending "
          f"{d.get('n', 0):3d} cpu {d.get('cpu', 0) / 1000:6.2f} "
          f"({100 * d.get('cpu', 0) / max(free['cpu'], 1):5.1f}%) mem "
          f"{d.get('memory', 0) / 2**30:6.1f}Gi gpu {d.get('nvidia.com/gpu', 0)}\n")
    d = demand.get("flexible (general/highmem/dedicated)", {})
    w(f"{'flexible (general/highmem/dedicated)':40s} pending {d.get('n', 0)} cpu "
      f"{d.get('cpu', 0) / 1000:.2f}\n")
    failed = greedy(burst + stuck, plan, built, used)
    w(f"greedy kube-like baseline: {len(burst) + len(stuck) - len(failed)} placed, "
      f"{len(failed)} left: {sorted(p.name for p in failed)}\n")


if __name__ == "__main__":
    raise SystemExit(main())
