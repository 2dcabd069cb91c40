"""Shared inputs of the service tests: a three-node cluster where one agent fits and one cannot."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from api.settings import Settings
from tests.builders import node, pod, taint

NODES = {"apiVersion": "v1", "kind": "List", "items": [
    node("n1", "2"), node("n2", "2", taints=[taint("dedicated", "gpu")]),
    node("n3", "8", unschedulable=True)]}
PENDING = [pod("fits", "1", namespace="team"), pod("too-big", "4", namespace="team")]
BODY = {"cluster": NODES, "pending": PENDING, "options": {"time_limit": 5}}


@pytest.fixture
def make_client(tmp_path):
    """A factory of TestClients over fresh apps (same database unless told), closed at the end."""
    clients = []

    def make(**settings) -> TestClient:
        settings.setdefault("db", str(tmp_path / "service.db"))
        client = TestClient(create_app(Settings(**settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()
