"""The rule registry: every rule implements the interface, named and ordered as kube's plugins."""

from __future__ import annotations

import pytest

from optimizer.rules import RULES, Rule

# kube-scheduler's default Filter plugins, in order, restricted to the ones agentplace implements
# (pkg/scheduler/apis/config/v1/default_plugins.go)
KUBE_FILTER_ORDER = ("NodeUnschedulable", "TaintToleration", "NodeAffinity", "NodeResourcesFit",
                     "PodTopologySpread", "InterPodAffinity",
                     "ColocationLimit",  # agentplace's extension (k >= 1 co-location limits)
                     "GangScheduling",  # scheduler-plugins Coscheduling (Permit): gangs
                     "GpuShare",  # GPU-sharing extenders (per card) run after the Filters
                     "ResourceQuota",  # admission (apiserver), not a Filter: after every Filter
                     "TokenBudget")  # agentplace's own admission rule, last


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_satisfies_the_rule_protocol(rule):
    assert isinstance(rule, Rule)
    for method in ("prefilter", "encode", "verify", "explain"):
        assert callable(getattr(rule, method))
    assert isinstance(type(rule).name, str) and type(rule).name


def test_rule_names_are_unique():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))


def test_rule_names_are_kube_plugin_names_in_kube_filter_order():
    assert tuple(r.name for r in RULES) == KUBE_FILTER_ORDER


def test_an_object_missing_a_method_is_not_a_rule():
    class NoExplain:
        name = "Broken"

        def prefilter(self, ix): ...
        def encode(self, mb, ix): ...
        def verify(self, assignment, snap): ...

    assert not isinstance(NoExplain(), Rule)
