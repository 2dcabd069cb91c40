"""Read the competition's four files from the zip in place, and draw app-stratified sub-samples.

Files (no header rows; see the dataset's PROVENANCE.md):
  machine_resources: machine_id, cpu, mem, disk, P, M, PM
  app_resources:     app_id, cpu series (98 points, `|`-separated), mem series, disk, P, M, PM
  instance_deploy:   instance_id, app_id, machine_id (empty: still to place)
  app_interference:  app_a, app_b, k: a machine hosting any app_a may host at most k app_b;
                     the official evaluator reads k + 1 for self-rules (app_a == app_b)
Units as in the files: cpu in cores, mem and disk in GB.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = "alibaba-tianchi2018-scheduling"
ARCHIVE = "preliminary_dataB_20180726.zip"
POINTS = 98
FILES = {
    "machines": "scheduling_preliminary_b_machine_resources_20180726.csv",
    "apps": "scheduling_preliminary_b_app_resources_20180726.csv",
    "instances": "scheduling_preliminary_b_instance_deploy_20180726.csv",
    "rules": "scheduling_preliminary_b_app_interference_20180726.csv",
}


@dataclass(frozen=True)
class Tianchi:
    machine_ids: list[str]
    machine_cap: np.ndarray  # float64[machine, 6]: cpu, mem, disk, P, M, PM
    app_ids: list[str]
    app_cpu: np.ndarray  # float64[app, 98] cores per instance over time
    app_mem: np.ndarray  # float64[app, 98] GB
    app_scalar: np.ndarray  # float64[app, 4]: disk, P, M, PM
    inst_ids: list[str]
    inst_app: np.ndarray  # int64[instance] app index
    inst_machine: np.ndarray  # int64[instance] production machine index, -1 = to place
    rules: np.ndarray  # int64[rule, 3]: app_a, app_b, k as in the file (self-rules: +1 is applied
    #                    by the checker and the mapping, never here)

    @property
    def num_instances(self) -> int:
        return len(self.inst_ids)


def archive_path(data: Path) -> Path:
    return data / DATA_DIR / ARCHIVE


def _rows(zf: zipfile.ZipFile, name: str) -> list[list[str]]:
    member = next(n for n in zf.namelist() if n.endswith(name))
    with zf.open(member) as fh:
        return [r for r in csv.reader(io.TextIOWrapper(fh, encoding="utf-8")) if r]


def load(data: Path) -> Tianchi:
    """The whole dataset; raises FileNotFoundError when the archive is absent."""
    with zipfile.ZipFile(archive_path(data)) as zf:
        machines = _rows(zf, FILES["machines"])
        apps = _rows(zf, FILES["apps"])
        instances = _rows(zf, FILES["instances"])
        rules = _rows(zf, FILES["rules"])
    machine_ids = [r[0] for r in machines]
    m_pos = {m: i for i, m in enumerate(machine_ids)}
    app_ids = [r[0] for r in apps]
    a_pos = {a: i for i, a in enumerate(app_ids)}
    cpu = np.array([r[1].split("|") for r in apps], dtype=np.float64)
    mem = np.array([r[2].split("|") for r in apps], dtype=np.float64)
    if cpu.shape[1] != POINTS or mem.shape[1] != POINTS:
        raise ValueError(f"app_resources: expected {POINTS}-point series, got {cpu.shape[1]}")
    return Tianchi(
        machine_ids=machine_ids,
        machine_cap=np.array([r[1:7] for r in machines], dtype=np.float64),
        app_ids=app_ids, app_cpu=cpu, app_mem=mem,
        app_scalar=np.array([r[3:7] for r in apps], dtype=np.float64),
        inst_ids=[r[0] for r in instances],
        inst_app=np.array([a_pos[r[1]] for r in instances], dtype=np.int64),
        inst_machine=np.array([m_pos[r[2]] if r[2] else -1 for r in instances], dtype=np.int64),
        rules=np.array([(a_pos[a], a_pos[b], int(k)) for a, b, k in rules], dtype=np.int64),
    )


@dataclass(frozen=True)
class Sample:
    """A sub-problem: some instances (indices into Tianchi.inst_*), a machine pool, and the
    rules among the sampled apps."""

    size: int
    seed: int
    instances: np.ndarray  # int64[i] into the dataset's instances, sorted
    machines: np.ndarray  # int64[m] into the dataset's machines, sorted
    rules: np.ndarray  # int64[r, 3] app_a, app_b, k (file's k) with both apps sampled


def stratified_instances(ds: Tianchi, n: int, seed: int) -> np.ndarray:
    """n instances, each app contributing its share n * size / total (largest remainders, ties
    broken by a seeded shuffle), its instances chosen at random: the app-size mix is kept."""
    rng = np.random.default_rng(seed)
    total = ds.num_instances
    if n >= total:
        return np.arange(total, dtype=np.int64)
    sizes = np.bincount(ds.inst_app, minlength=len(ds.app_ids))
    share = sizes * (n / total)
    take = np.floor(share).astype(np.int64)
    rest = n - int(take.sum())
    jitter = rng.permutation(len(sizes))  # seeded tie-break among equal remainders
    order = np.lexsort((jitter, -(share - take)))
    take[order[:rest]] += 1
    by_app = np.argsort(ds.inst_app, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)))
    out = []
    for a in np.nonzero(take)[0].tolist():
        members = by_app[starts[a]:starts[a + 1]]
        out.append(rng.choice(members, size=int(take[a]), replace=False))
    return np.sort(np.concatenate(out)).astype(np.int64)


def machine_pool(ds: Tianchi, n_instances: int, seed: int, ratio: float | None = None) -> np.ndarray:
    """The competition's machines-per-instance ratio (6,000 for 68,224) scaled to the sample,
    each machine type in its share of the fleet, chosen at random (seeded)."""
    rng = np.random.default_rng(seed + 1)
    ratio = ratio if ratio is not None else len(ds.machine_ids) / ds.num_instances
    m = min(len(ds.machine_ids), int(np.ceil(n_instances * ratio)))
    kinds, kind_of = np.unique(ds.machine_cap, axis=0, return_inverse=True)
    kind_of = kind_of.reshape(-1)
    counts = np.bincount(kind_of, minlength=len(kinds))
    want = np.floor(counts * m / counts.sum()).astype(np.int64)
    want[np.argsort(-(counts * m / counts.sum() - want))[: m - int(want.sum())]] += 1
    out = [rng.choice(np.nonzero(kind_of == k)[0], size=int(w), replace=False)
           for k, w in enumerate(want.tolist()) if w]
    return np.sort(np.concatenate(out)).astype(np.int64)


def sample(ds: Tianchi, n: int, seed: int, machine_ratio: float | None = None) -> Sample:
    inst = stratified_instances(ds, n, seed)
    apps = np.zeros(len(ds.app_ids), dtype=bool)
    apps[ds.inst_app[inst]] = True
    keep = apps[ds.rules[:, 0]] & apps[ds.rules[:, 1]]
    return Sample(int(inst.size), seed, inst, machine_pool(ds, int(inst.size), seed, machine_ratio),
                  ds.rules[keep])
