"""Fixtures for the binder: plans, an outbox on SQLite or on a throwaway PostgreSQL server.

The PostgreSQL server is real (initdb + pg_ctl from the machine's installation), started once
per test session on a free loopback port with its socket in a temp dir, one fresh database per
test. PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
`postgres` user if there is one, else `nobody`. The tests skip, saying why, only when no server
binary is installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from optimizer.binder import Outbox
from optimizer.plan import Placement, Plan


def make_plan(n: int, nodes: int = 4, *, verified: bool = True, prefix: str = "agent") -> Plan:
    return Plan(status="OPTIMAL", verified=verified,
                placements=[Placement(f"team-{i % 3}/{prefix}-{i:03d}", f"node-{i % nodes:02d}")
                            for i in range(n)])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'outbox.db'}"


@pytest.fixture
def outbox(sqlite_url: str) -> Iterator[Outbox]:
    with Outbox(sqlite_url) as ob:
        yield ob


# -- PostgreSQL -----------------------------------------------------------------------------------

def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/local/bin")
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    host: str
    port: int
    user: str

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _runner() -> tuple[Callable[[list[str]], list[str]], str | None]:
    """(wrap a command to run as the server user, that user); root cannot run postgres."""
    if os.geteuid() != 0:
        return (lambda cmd: cmd), None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return (lambda cmd, u=user: ["runuser", "-u", u, "--", *cmd]), user
        if shutil.which("su"):
            return (lambda cmd, u=user: ["su", "-s", "/bin/sh", u, "-c", shlex.join(cmd)]), user
    pytest.skip("running as root and found neither a postgres/nobody user nor runuser/su "
                "to run PostgreSQL as (it refuses to run as root)")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, in "
                    "/usr/local/bin or /usr/lib/postgresql/*/bin: PostgreSQL tests skipped")
    as_user, user = _runner()
    # not pytest's tmp_path: its parents are private to root and the server user must reach it
    root = Path(tempfile.mkdtemp(prefix="agentplace-pg-"))
    data, log = root / "data", root / "server.log"
    if user:
        shutil.chown(root, user)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        subprocess.run(as_user([initdb, "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, env=env,
                       timeout=120)
        opts = f"-k {root} -h 127.0.0.1 -p {port} -F -c fsync=off"
        started = subprocess.run(as_user([pg_ctl, "-D", str(data), "-l", str(log), "-o", opts,
                                          "-w", "-t", "60", "start"]), capture_output=True, env=env,
                                 timeout=90)
        if started.returncode != 0:
            detail = log.read_text() if log.exists() else started.stderr.decode()
            pytest.fail(f"PostgreSQL did not start:\n{started.stdout.decode()}\n{detail}")
        yield PgServer("127.0.0.1", port, "postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(as_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           capture_output=True, env=env, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded default and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.db'}"
    return str(request.getfixturevalue("pg_url"))
