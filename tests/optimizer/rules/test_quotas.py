"""ResourceQuota, after kube's quota admission (resourcequota/controller.go CheckRequest and the pod
evaluator, pkg/quota/v1/evaluator/core/pods.go): a namespace-wide cap at admission, not a Filter.

Each table case is one node and one pending agent (a new one unless it has a uid), read four ways
that must agree: the prefilter row (all nodes or none), the admission message (kube's exact text
after `pods "agent" is forbidden: `), a tiny solve (placed, or unplaced with that message) and the
verifier on the agent forced onto the node. Batch scenarios assert relations over a window.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from models.quantity import canonical, parse_quantity, quantity_format, quota_units
from optimizer import optimize
from optimizer.baseline import greedy
from optimizer.explain import explain_pending
from optimizer.index import Index
from optimizer.rules.quotas import quota_table
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory, node, pod
from tests.optimizer.rules.conftest import SOLVE, check_admission_rule, rule_named

RULE = rule_named("ResourceQuota")
GPU = "nvidia.com/gpu"
FORBIDDEN = 'pods "agent" is forbidden: '


def quota(name: str = "compute", namespace: str = "default", *, hard: dict[str, str],
          used: dict[str, str] | None = None, scopes: list[str] | None = None,
          selector: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ResourceQuota as kubectl prints it; `used=None` means the controller has not synced."""
    spec: dict[str, Any] = {"hard": hard}
    if scopes:
        spec["scopes"] = scopes
    if selector:
        spec["scopeSelector"] = {"matchExpressions": selector}
    status: dict[str, Any] = {"hard": hard}
    if used is not None:
        status["used"] = used
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec, "status": status}


def prio_scope(operator: str, *values: str) -> list[dict[str, Any]]:
    out: dict[str, Any] = {"scopeName": "PriorityClass", "operator": operator}
    if values:
        out["values"] = list(values)
    return [out]


def agent(cpu: str | None = "1", memory: str | None = None, *, name: str = "agent",
          limits: dict[str, str] | None = None, uid: str | None = None,
          **kw: Any) -> dict[str, Any]:
    out = pod(name, cpu, memory, **kw)
    if limits:
        out["spec"]["containers"][0]["resources"]["limits"] = limits
    if uid:
        out["metadata"]["uid"] = uid
    return out


Resources = tuple[str, dict[str, Any]]  # a container's name and its resources


def containers(*specs: Resources, init: tuple[Resources, ...] = (),
               name: str = "agent") -> dict[str, Any]:
    out = pod(name)
    out["spec"]["containers"] = [{"name": n, "resources": r} for n, r in specs]
    if init:
        out["spec"]["initContainers"] = [{"name": n, "resources": r} for n, r in init]
    return out


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj["spec"].update(spec)
    return obj


def priority_class(name: str, value: int, global_default: bool = False) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "globalDefault": global_default}


def case(id: str, *objects: dict[str, Any], want: str | None = None) -> Any:
    return pytest.param(list(objects), want, id=id)


def exceeded(q: str, requested: str, used: str, limited: str) -> str:
    return f"exceeded quota: {q}, requested: {requested}, used: {used}, limited: {limited}"


BIG = node("n", cpu="64", memory="256Gi", extra={GPU: "8", "hugepages-2Mi": "1Gi",
                                                  "ephemeral-storage": "100Gi"})

CASES = [
    case("an agent in a namespace without any quota is admitted",
         BIG, agent()),
    case("an agent that stays within requests.cpu is admitted",
         BIG, quota(hard={"requests.cpu": "10"}, used={"requests.cpu": "8"}), agent("2")),
    case("an agent that lands exactly on the cap is admitted",
         BIG, quota(hard={"requests.cpu": "10"}, used={"requests.cpu": "9"}), agent("1")),
    case("an agent over requests.cpu is rejected with kube's exceeded message",
         BIG, quota(hard={"requests.cpu": "10"}, used={"requests.cpu": "9"}), agent("2"),
         want=exceeded("compute", "requests.cpu=2", "requests.cpu=9", "requests.cpu=10")),
    case("the cpu quota name is requests.cpu too, counted in millicores",
         BIG, quota(hard={"cpu": "1500m"}, used={"cpu": "1"}), agent("600m"),
         want=exceeded("compute", "cpu=600m", "cpu=1", "cpu=1500m")),
    case("one millicore under the cap is admitted",
         BIG, quota(hard={"cpu": "1500m"}, used={"cpu": "1"}), agent("500m")),
    case("requests.memory is compared in bytes and printed in the agent's binary form",
         BIG, quota(hard={"requests.memory": "4Gi"}, used={"requests.memory": "3Gi"}),
         agent("1", "1536Mi"),
         want=exceeded("compute", "requests.memory=1536Mi", "requests.memory=3Gi",
                       "requests.memory=4Gi")),
    case("the pods count is charged one per agent",
         BIG, quota(hard={"pods": "5"}, used={"pods": "5"}), agent(),
         want=exceeded("compute", "pods=1", "pods=5", "pods=5")),
    case("count/pods is charged one per agent",
         BIG, quota(hard={"count/pods": "2"}, used={"count/pods": "2"}), agent(),
         want=exceeded("compute", "count/pods=1", "count/pods=2", "count/pods=2")),
    case("every exceeded resource of the quota is listed, sorted by name",
         BIG, quota(hard={"requests.cpu": "1", "pods": "1", "requests.memory": "8Gi"},
                    used={"requests.cpu": "1", "pods": "1", "requests.memory": "1Gi"}),
         agent("1", "1Gi"),
         want=exceeded("compute", "pods=1,requests.cpu=1", "pods=1,requests.cpu=1",
                       "pods=1,requests.cpu=1")),
    case("a quota already over its cap still rejects an agent that consumes the resource",
         BIG, quota(hard={"requests.cpu": "2"}, used={"requests.cpu": "3"}), agent("100m"),
         want=exceeded("compute", "requests.cpu=100m", "requests.cpu=3", "requests.cpu=2")),
    case("a resource the agent does not consume is not checked, even over its cap",
         BIG, quota(hard={f"requests.{GPU}": "1"}, used={f"requests.{GPU}": "3"}), agent("1")),
    case("requests.nvidia.com/gpu caps the extended resource",
         BIG, quota("gpu", hard={f"requests.{GPU}": "4"}, used={f"requests.{GPU}": "3"}),
         agent("1", extra={GPU: "2"}),
         want=exceeded("gpu", f"requests.{GPU}=2", f"requests.{GPU}=3", f"requests.{GPU}=4")),
    case("requests.nvidia.com/gpu with room left admits the agent",
         BIG, quota("gpu", hard={f"requests.{GPU}": "4"}, used={f"requests.{GPU}": "2"}),
         agent("1", extra={GPU: "2"})),
    case("limits.memory is charged the agent's memory limit",
         BIG, quota(hard={"limits.memory": "2Gi"}, used={"limits.memory": "1Gi"}),
         agent("1", "1Gi", limits={"memory": "2Gi"}),
         want=exceeded("compute", "limits.memory=2Gi", "limits.memory=1Gi", "limits.memory=2Gi")),
    case("hugepages are charged as hugepages-<size> and requests.hugepages-<size>",
         BIG, quota(hard={"requests.hugepages-2Mi": "256Mi"},
                    used={"requests.hugepages-2Mi": "128Mi"}),
         agent("1", "1Gi", extra={"hugepages-2Mi": "256Mi"}, limits={"hugepages-2Mi": "256Mi"}),
         want=exceeded("compute", "requests.hugepages-2Mi=256Mi",
                       "requests.hugepages-2Mi=128Mi", "requests.hugepages-2Mi=256Mi")),
    case("pod overhead is charged to requests.cpu",
         BIG, quota(hard={"requests.cpu": "2"}, used={"requests.cpu": "1"}),
         with_spec(agent("900m"), overhead={"cpu": "250m"}),
         want=exceeded("compute", "requests.cpu=1150m", "requests.cpu=1", "requests.cpu=2")),
    # must specify (Constraints)
    case("a quota on requests.cpu rejects an agent without a cpu request",
         BIG, quota(hard={"requests.cpu": "10"}, used={"requests.cpu": "0"}), agent(None),
         want="failed quota: compute: must specify requests.cpu for: agent"),
    case("a quota on cpu names the missing resource cpu",
         BIG, quota(hard={"cpu": "10"}, used={"cpu": "0"}), agent(None),
         want="failed quota: compute: must specify cpu for: agent"),
    case("a quota on limits.cpu rejects an agent with a cpu request but no cpu limit",
         BIG, quota(hard={"limits.cpu": "10"}, used={"limits.cpu": "0"}), agent("1"),
         want="failed quota: compute: must specify limits.cpu for: agent"),
    case("a cpu limit alone defaults the request and satisfies requests.cpu",
         BIG, quota(hard={"requests.cpu": "10"}, used={"requests.cpu": "0"}),
         agent(None, limits={"cpu": "1"})),
    case("a must-specify message lists resources sorted, each with its sorted containers",
         BIG, quota(hard={"limits.memory": "10Gi", "requests.cpu": "10"},
                    used={"limits.memory": "0", "requests.cpu": "0"}),
         containers(("web", {"requests": {"cpu": "1"}}), ("sidecar", {}),
                    init=(("setup", {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}),)),
         want="failed quota: compute: must specify limits.memory for: sidecar,web; "
              "requests.cpu for: sidecar"),
    case("a quota that tracks no cpu or memory requires nothing",
         BIG, quota(hard={"pods": "10", f"requests.{GPU}": "4"},
                    used={"pods": "0", f"requests.{GPU}": "0"}), agent(None)),
    case("a quota on objects pods do not consume does not concern the agent",
         BIG, quota(hard={"services": "1"}, used={"services": "1"}), agent(None)),
    case("a must-specify failure comes before any exceeded quota",
         BIG, quota("a-count", hard={"pods": "0"}, used={"pods": "0"}),
         quota("b-cpu", hard={"limits.cpu": "10"}, used={"limits.cpu": "0"}), agent("1"),
         want="failed quota: b-cpu: must specify limits.cpu for: agent"),
    case("a quota in another namespace does not apply",
         BIG, quota(namespace="team-b", hard={"pods": "0"}, used={"pods": "0"}), agent()),
    case("an admitted pending pod (it has a uid) is never rejected by quota",
         BIG, quota(hard={"pods": "1", "limits.cpu": "1"}, used={"pods": "5", "limits.cpu": "0"}),
         agent(uid="1b4e28ba-2fa1-11d2-883f-0016d3cca427")),
    # scopes
    case("a PriorityClass In scope covers an agent of that class",
         BIG, priority_class("high", 1000),
         quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("In", "high")),
         agent(priority_class="high"),
         want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("a PriorityClass In scope does not cover an agent of another class",
         BIG, priority_class("low", 10),
         quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("In", "high")),
         agent(priority_class="low")),
    case("a PriorityClass In scope does not cover an agent without a class",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("In", "high")),
         agent()),
    case("a PriorityClass NotIn scope covers an agent without a class",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("NotIn", "high")),
         agent(), want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("a PriorityClass Exists scope does not cover an agent without a class",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("Exists")),
         agent()),
    case("a PriorityClass DoesNotExist scope covers an agent without a class",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("DoesNotExist")),
         agent(), want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("a new agent without a class gets the globalDefault class's name for scopes",
         BIG, priority_class("standard", 100, global_default=True),
         quota(hard={"pods": "0"}, used={"pods": "0"}, selector=prio_scope("In", "standard")),
         agent(), want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("a BestEffort scope covers an agent with no cpu or memory request or limit",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, scopes=["BestEffort"]), agent(None),
         want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("a BestEffort scope does not cover an agent with a cpu request",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, scopes=["BestEffort"]), agent("1")),
    case("a NotBestEffort quota on requests.cpu does not demand a request of a best-effort agent",
         BIG, quota(hard={"requests.cpu": "1"}, used={"requests.cpu": "0"},
                    scopes=["NotBestEffort"]), agent(None)),
    case("a Terminating scope covers an agent with activeDeadlineSeconds",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, scopes=["Terminating"]),
         with_spec(agent(), activeDeadlineSeconds=600),
         want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("a Terminating scope does not cover an agent without a deadline",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, scopes=["Terminating"]), agent()),
    case("a NotTerminating scope covers an agent without a deadline",
         BIG, quota(hard={"pods": "0"}, used={"pods": "0"}, scopes=["NotTerminating"]), agent(),
         want=exceeded("compute", "pods=1", "pods=0", "pods=0")),
    case("scopes are ANDed: Terminating and a PriorityClass both have to match",
         BIG, priority_class("high", 1000),
         quota(hard={"pods": "0"}, used={"pods": "0"}, scopes=["Terminating"],
               selector=prio_scope("In", "high")), agent(priority_class="high")),
    # status.used missing
    case("without status.used the usage is computed from the namespace's running pods",
         BIG, quota(hard={"requests.cpu": "2"}), pod("web", "1500m", node_name="n"), agent("1"),
         want=exceeded("compute", "requests.cpu=1", "requests.cpu=1500m", "requests.cpu=2")),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_quota_admission_readings_agree(objects: list[dict[str, Any]], want: str | None) -> None:
    violations = check_admission_rule(RULE, objects, None if want is None else FORBIDDEN + want)
    messages = [v.message for v in violations]
    # the verifier lists every broken quota; admission stops at the first one
    assert messages == [] if want is None else want in messages


# --- batch scenarios ----------------------------------------------------------------------------

def team_node(name: str, cpu: str = "16") -> dict[str, Any]:
    return node(name, cpu=cpu, memory="64Gi", extra={GPU: "4"})


def test_quota_binds_in_the_window_so_the_higher_priority_agents_get_it() -> None:
    """requests.cpu 4 left: two 2-cpu high agents outweigh four 1-cpu low ones (lexicographic),
    although the cluster could hold all of them."""
    inv = inventory(
        team_node("n1"), team_node("n2"),
        quota("team", "ml", hard={"requests.cpu": "4"}, used={"requests.cpu": "0"}),
        *(pod(f"high-{i}", "2", namespace="ml", priority=1000) for i in range(2)),
        *(pod(f"low-{i}", "1", namespace="ml", priority=10) for i in range(4)),
    )
    plan = optimize(inv, SOLVE)
    placed = set(plan.assignment())
    assert placed == {"ml/high-0", "ml/high-1"}
    assert {u.agent: u.reason for u in plan.unplaced} == {
        f"ml/low-{i}": f'pods "low-{i}" is forbidden: ' + exceeded(
            "team", "requests.cpu=1", "requests.cpu=4", "requests.cpu=4") for i in range(4)}
    assert plan.model["constraints_by_family"].get("ResourceQuota") == 1


def test_quota_caps_the_window_but_not_other_namespaces() -> None:
    inv = inventory(
        team_node("n1"),
        quota("team", "ml", hard={"pods": "3"}, used={"pods": "1"}),
        *(pod(f"a-{i}", "1", namespace="ml") for i in range(4)),
        *(pod(f"b-{i}", "1", namespace="web") for i in range(4)),
    )
    plan = optimize(inv, SOLVE)
    ns = [a.split("/")[0] for a in plan.assignment()]
    assert ns.count("ml") == 2 and ns.count("web") == 4


def test_admitted_pending_pods_are_not_charged_again() -> None:
    """status.used pods=3 already counts the two admitted pending pods and the running one, so
    both admitted pods are placed and the one new agent is over the cap."""
    uid = "00000000-0000-0000-0000-00000000000"
    inv = inventory(
        team_node("n1"),
        quota("team", "ml", hard={"pods": "3"}, used={"pods": "3"}),
        pod("running", "1", namespace="ml", node_name="n1"),
        *(agent("1", name=f"admitted-{i}", namespace="ml", uid=f"{uid}{i}") for i in range(2)),
        pod("new", "1", namespace="ml"),
    )
    plan = optimize(inv, SOLVE)
    assert set(plan.assignment()) == {"ml/admitted-0", "ml/admitted-1"}
    assert [(u.agent, u.reason) for u in plan.unplaced] == [
        ("ml/new", 'pods "new" is forbidden: ' + exceeded("team", "pods=1", "pods=3", "pods=3"))]


def test_without_status_used_admitted_pods_count_once_and_a_warning_says_so() -> None:
    inv = inventory(
        team_node("n1"),
        quota("team", "ml", hard={"pods": "3"}),
        pod("running", "1", namespace="ml", node_name="n1"),
        agent("1", name="admitted", namespace="ml", uid="u-1"),
        *(pod(f"new-{i}", "1", namespace="ml") for i in range(3)),
    )
    plan = optimize(inv, SOLVE)
    assert len(plan.assignment()) == 2 and "ml/admitted" in plan.assignment()
    assert any(w.startswith("ResourceQuota ml/team: status.used has no pods: usage computed")
               for w in plan.warnings)


def test_a_gpu_quota_caps_requests_of_the_extended_resource() -> None:
    inv = inventory(
        team_node("n1"), team_node("n2"),
        quota("gpus", "ml", hard={f"requests.{GPU}": "3"}, used={f"requests.{GPU}": "1"}),
        *(pod(f"train-{i}", "1", namespace="ml", extra={GPU: "1"}) for i in range(4)),
        *(pod(f"cpu-{i}", "1", namespace="ml") for i in range(3)),
    )
    plan = optimize(inv, SOLVE)
    placed = plan.assignment()
    assert sum(a.startswith("ml/train-") for a in placed) == 2
    assert sum(a.startswith("ml/cpu-") for a in placed) == 3
    for u in plan.unplaced:
        assert u.reason.endswith(exceeded("gpus", f"requests.{GPU}=1", f"requests.{GPU}=3",
                                          f"requests.{GPU}=3"))


def test_a_priority_class_scoped_quota_counts_only_matching_agents() -> None:
    inv = inventory(
        team_node("n1"),
        priority_class("premium", 1000), priority_class("batch", 10),
        quota("premium-only", "ml", hard={"pods": "1"}, used={"pods": "0"},
              selector=prio_scope("In", "premium")),
        *(pod(f"p-{i}", "1", namespace="ml", priority_class="premium") for i in range(3)),
        *(pod(f"b-{i}", "1", namespace="ml", priority_class="batch") for i in range(3)),
    )
    plan = optimize(inv, SOLVE)
    placed = plan.assignment()
    assert sum(a.startswith("ml/p-") for a in placed) == 1
    assert sum(a.startswith("ml/b-") for a in placed) == 3


def test_an_agent_without_a_cpu_request_is_rejected_where_the_quota_tracks_requests_cpu() -> None:
    bare = agent(None, name="bare", namespace="ml")
    inv = inventory(
        team_node("n1"),
        quota("team", "ml", hard={"requests.cpu": "10"}, used={"requests.cpu": "0"}),
        bare, agent(None, name="bare", namespace="web"), pod("ok", "1", namespace="ml"),
    )
    plan = optimize(inv, SOLVE)
    assert set(plan.assignment()) == {"web/bare", "ml/ok"}
    assert [(u.agent, u.reason) for u in plan.unplaced] == [
        ("ml/bare", 'pods "bare" is forbidden: failed quota: team: must specify requests.cpu '
                    "for: agent")]
    # `agentplace explain` says the same against the cluster as given
    messages = {e.agent: e.message for e in explain_pending(build_snapshot(inv))}
    assert messages["ml/bare"] == plan.unplaced[0].reason
    assert messages["web/bare"] == "1/1 nodes are feasible"


def test_the_verifier_rejects_a_plan_that_exceeds_a_quota() -> None:
    snap = build_snapshot(inventory(
        team_node("n1"),
        quota("team", "ml", hard={"requests.cpu": "3"}, used={"requests.cpu": "1500m"}),
        *(pod(f"a-{i}", "1", namespace="ml") for i in range(2)),
    ))
    one = verify([("ml/a-0", "n1")], snap)
    assert one == []
    both = verify([("ml/a-0", "n1"), ("ml/a-1", "n1")], snap)
    assert [(v.rule, v.agent, v.node, v.message) for v in both] == [
        ("ResourceQuota", "ml/a-0,ml/a-1", None,
         exceeded("team", "requests.cpu=2", "requests.cpu=1500m", "requests.cpu=3"))]


def test_the_greedy_respects_the_quota_step_by_step() -> None:
    snap = build_snapshot(inventory(
        team_node("n1"), team_node("n2"),
        quota("team", "ml", hard={"requests.cpu": "5"}, used={"requests.cpu": "0"}),
        *(pod(f"a-{i}", "2", namespace="ml") for i in range(4)),
    ))
    ix = Index(snap)
    static, _ = prefilter(ix)
    nodes = greedy(ix, static)
    assert int((nodes >= 0).sum()) == 2
    placed = [(snap.pending[a].ref, ix.node_names[n]) for a, n in enumerate(nodes.tolist())
              if n >= 0]
    assert verify(placed, snap) == []


def test_the_encoding_rounds_charges_up_and_the_cap_down() -> None:
    snap = build_snapshot(inventory(
        team_node("n1"),
        quota("team", "ml", hard={"requests.cpu": "2500500u", "limits.memory": "1536"},
              used={"requests.cpu": "1", "limits.memory": "0"}),
        agent("1500100u", "1", namespace="ml", limits={"memory": "1000m"}),
    ))
    t = quota_table(Index(snap))
    rows = dict(zip(t.remaining.tolist(), t.amount[:, 0].tolist(), strict=True))
    assert rows == {1536: 1, 1500: 1501}  # limits.memory 1 byte of 1536; cpu 1501m of 1500m
    assert t.rejected.tolist() == [True]  # 1501m > 1500m: stricter than exact, never looser


# --- the quantities quota reads -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "printed"), [
    pytest.param("2", "2", id="a whole number prints as itself"),
    pytest.param("1.5", "1500m", id="a fraction of a core prints in millis"),
    pytest.param("2000", "2k", id="a decimal thousand prints with the k suffix"),
    pytest.param("1.5Gi", "1536Mi", id="binary keeps the largest exact binary suffix"),
    pytest.param("1000Mi", "1000Mi", id="1000Mi is not a whole Gi"),
    pytest.param("2e3", "2e3", id="a decimal exponent keeps its exponent form"),
    pytest.param("100u", "100u", id="micro stays micro"),
])
def test_canonical_prints_quantities_as_kube_does(text: str, printed: str) -> None:
    q = parse_quantity(text)
    assert canonical(q.value, quantity_format(text)) == printed


def test_quota_units_count_cpu_names_in_millicores_and_can_round_down() -> None:
    assert quota_units("limits.cpu", Fraction(3, 2)) == 1500
    assert quota_units("requests.memory", Fraction(3, 2)) == 2
    assert quota_units("requests.memory", Fraction(3, 2), round_down=True) == 1


def test_pod_limits_follow_kube_pod_limits() -> None:
    snap = build_snapshot(inventory(
        node("n"),
        with_spec(containers(("a", {"limits": {"cpu": "1", "memory": "1Gi"}}),
                             ("b", {"limits": {"cpu": "500m"}}),
                             init=(("setup", {"limits": {"cpu": "3"}}),)),
                  overhead={"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"}),
    ))
    # max(1 + 0.5, 3) + overhead on the limited resources only; no ephemeral-storage limit
    assert snap.pending[0].limits() == {"cpu": 3100, "memory": 2**30 + 64 * 2**20}


# --- random windows: every reading stays valid ----------------------------------------------------

def random_window(seed: int) -> list[dict[str, Any]]:
    """Two namespaces, a few nodes, quotas on random resources and scopes, admitted and new
    agents of mixed priority classes."""
    rng = np.random.default_rng(seed)
    objs: list[dict[str, Any]] = [priority_class("premium", 1000), priority_class("batch", 10)]
    objs += [team_node(f"n{i}", cpu=str(int(rng.integers(2, 9)))) for i in range(3)]
    for ns in ("ml", "web"):
        hard = {"requests.cpu": str(int(rng.integers(1, 8))), "pods": str(int(rng.integers(1, 8))),
                f"requests.{GPU}": str(int(rng.integers(0, 4)))}
        used = {k: str(int(rng.integers(0, 2))) for k in hard}
        selector = prio_scope("In", "premium") if rng.random() < 0.3 else None
        objs.append(quota("q", ns, hard=hard, used=used if rng.random() < 0.8 else None,
                          selector=selector))
        for i in range(int(rng.integers(3, 9))):
            extra = {GPU: "1"} if rng.random() < 0.3 else None
            cls = ["premium", "batch", None][int(rng.integers(0, 3))]
            uid = f"uid-{ns}-{i}" if rng.random() < 0.2 else None
            objs.append(agent(str(int(rng.integers(1, 3))), name=f"a{i}", namespace=ns,
                              extra=extra, priority_class=cls, uid=uid))
    return objs


@pytest.mark.parametrize("seed", range(12))
def test_random_windows_give_valid_plans_and_the_solver_beats_the_greedy(seed: int) -> None:
    inv = inventory(*random_window(seed))
    snap = build_snapshot(inv)
    plan = optimize(snap, SOLVE)
    assert plan.verified
    assert plan.objective_terms["placed_priority"] >= plan.baseline["placed_priority"]
    ix = Index(snap)
    nodes = greedy(ix, prefilter(ix)[0])
    greedy_plan = [(snap.pending[a].ref, ix.node_names[n])
                   for a, n in enumerate(nodes.tolist()) if n >= 0]
    assert verify(greedy_plan, snap) == []
    # every agent quota leaves out is told why in kube's admission words, or by the scheduler
    for u in plan.unplaced:
        assert u.reason.startswith(("pods ", "0/", "1/", "2/", "3/"))
