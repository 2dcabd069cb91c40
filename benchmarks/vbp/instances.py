"""Vector bin packing instances: the `.vbp` parser, the data sets on disk, reference values, tiers.

Data sets (read in place, never copied into the repository):
  vbp-mommessin-cor2024/instances/{Panigrahy,New,Triplet}_instances.tar.gz  (read from the archives)
  vbp-mommessin-cor2024/results/{Panigrahy,New,Triplet}_summary_known.csv   (LB, OPT, paper heuristics)
  vbp-caprara-toth-2d/CT01/CL_<k>_<n>_<i>.vbp, optimal_values.csv         (best_known_UB = optimum)

Quirks handled here (see shared/notes/cp-sat-on-vector-packing.md): instance names repeat between
sets, so everything is keyed by (set, name); n is read from the file (some names lie); items are
shuffled with a seeded RNG, because the Triplet files list items in their optimal groups of three
and an order-keeping heuristic would get the answer for free; negative sizes (77 Triplet-Caprara
files) are kept as given and flagged, and the suite reports those instances as skipped.
"""

from __future__ import annotations

import csv
import random
import re
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MOMMESSIN = "vbp-mommessin-cor2024"
CAPRARA_TOTH = "vbp-caprara-toth-2d"
MOMMESSIN_SETS = ("Panigrahy", "New", "Triplet")
SETS = (*MOMMESSIN_SETS, "CT01")

# item-count ranges per tier (inclusive); n is read from each file
TIERS: dict[str, tuple[int, int]] = {"smoke": (1, 60), "standard": (120, 250), "stress": (490, 510)}


class VbpFormatError(ValueError):
    """A `.vbp` text that does not follow the VPSolver format."""


@dataclass(frozen=True)
class Reference:
    """What is known about an instance's optimum: `value` is OPT when `kind == "OPT"`, else LB."""

    value: int
    kind: str  # "OPT" | "LB"
    lb: int | None = None
    best_ic: int | None = None  # paper: best item-centric heuristic (FF/FFD/BFD variants)
    best_overall: int | None = None  # paper: best of ~350 heuristic variants


@dataclass
class VbpInstance:
    set: str  # Panigrahy | New | Triplet | CT01
    cls: str  # class1.. / Caprara | Falkenauer / CL_1..
    name: str  # file name without .vbp
    capacity: np.ndarray  # int64[d]
    sizes: np.ndarray  # int64[n, d], one row per item (multiplicities expanded)
    reference: Reference | None = None
    source: str = ""
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.set}/{self.name}"

    @property
    def klass(self) -> str:
        return f"{self.set}/{self.cls}"

    @property
    def n(self) -> int:
        return int(self.sizes.shape[0])

    @property
    def d(self) -> int:
        return int(self.capacity.shape[0])

    def skip_reason(self) -> str | None:
        """Why the Kubernetes mapping cannot represent this instance, or None."""
        if (self.sizes < 0).any():
            neg = int((self.sizes < 0).sum())
            return (f"{neg} negative item size(s) (e.g. {int(self.sizes.min())}): a Kubernetes "
                    "resource request cannot be negative")
        if (self.sizes > self.capacity).any():
            return "an item is larger than the bin in some dimension: no packing exists"
        return None


def parse_vbp(text: str, where: str = "<vbp>") -> tuple[np.ndarray, np.ndarray]:
    """VPSolver `.vbp`: d; d capacities; m; m lines of `w_1 .. w_d q`. Returns (capacity[d],
    sizes[n, d]) with every item type repeated q times, in file order. Sizes are kept as given,
    negative ones included."""
    tokens = text.split()
    pos = 0

    def take(k: int, what: str) -> list[int]:
        nonlocal pos
        if pos + k > len(tokens):
            raise VbpFormatError(f"{where}: file ends while reading {what}")
        try:
            out = [int(t) for t in tokens[pos:pos + k]]
        except ValueError as e:
            raise VbpFormatError(f"{where}: {what}: not an integer ({e})") from None
        pos += k
        return out

    (d,) = take(1, "the number of dimensions")
    if d < 1:
        raise VbpFormatError(f"{where}: {d} dimensions")
    capacity = take(d, "the bin capacities")
    (m,) = take(1, "the number of item types")
    rows: list[list[int]] = []
    for t in range(m):
        *w, q = take(d + 1, f"item type {t}")
        if q < 0:
            raise VbpFormatError(f"{where}: item type {t}: negative multiplicity {q}")
        rows.extend([w] * q)
    if pos != len(tokens):
        raise VbpFormatError(f"{where}: {len(tokens) - pos} unexpected trailing values")
    sizes = np.array(rows, dtype=np.int64).reshape(len(rows), d)
    return np.array(capacity, dtype=np.int64), sizes


def shuffle_items(sizes: np.ndarray, key: str, seed: int) -> np.ndarray:
    """A seeded, per-instance permutation of the items (stable across runs and machines)."""
    rng = random.Random(zlib.crc32(key.encode()) ^ seed)
    order = list(range(sizes.shape[0]))
    rng.shuffle(order)
    return sizes[order]


# ---------------------------------------------------------------- data sets on disk

def _int(v: str) -> int | None:
    v = v.strip()
    return int(v) if v and v.lstrip("-").isdigit() else None


def load_mommessin_references(root: Path, set_name: str) -> dict[str, Reference]:
    path = root / MOMMESSIN / "results" / f"{set_name}_summary_known.csv"
    out: dict[str, Reference] = {}
    if not path.is_file():
        return out
    with path.open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lb, opt = _int(row["LB"]), _int(row["OPT"])
            if lb is None:
                continue
            known = opt is not None and opt >= 0
            out[row["instance_name"]] = Reference(
                value=opt if known else lb, kind="OPT" if known else "LB", lb=lb,
                best_ic=_int(row.get("best_IC", "")), best_overall=_int(row.get("best_overall", "")))
    return out


def load_ct01_references(root: Path) -> dict[str, Reference]:
    path = root / CAPRARA_TOTH / "optimal_values.csv"
    out: dict[str, Reference] = {}
    if not path.is_file():
        return out
    with path.open(newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            if row["dimension"].strip() != "2":
                continue
            name = f"CL_{row['class'].strip()}_{row['items'].strip()}_{row['instance_number'].strip()}"
            lb, ub = _int(row["best_known_LB"]), _int(row["best_known_UB"])
            if ub is None:
                continue
            out[name] = Reference(value=ub, kind="OPT" if lb == ub else "LB", lb=lb)
    return out


_MOM_NAME = re.compile(r"(?P<cls>class\w+?)_(?P<n>\d+)_(?P<d>\d+)_(?P<i>\d+)$")
_CT_NAME = re.compile(r"CL_(?P<k>\d+)_(?P<n>\d+)_(?P<i>\d+)$")


@dataclass(frozen=True)
class InstanceFile:
    """An instance not read yet: enough to select it by tier before parsing."""

    set: str
    cls: str
    name: str
    nominal_n: int  # from the name; the parsed file is authoritative
    location: str  # "tar:<archive>::<member>" or a path

    @property
    def klass(self) -> str:
        return f"{self.set}/{self.cls}"


def discover(root: Path) -> tuple[list[InstanceFile], list[str]]:
    """All instance files under the data root, and notes on data sets that are missing."""
    files: list[InstanceFile] = []
    notes: list[str] = []
    mom = root / MOMMESSIN / "instances"
    for set_name in MOMMESSIN_SETS:
        archive = mom / f"{set_name}_instances.tar.gz"
        if not archive.is_file():
            notes.append(f"{archive} not found: set {set_name} skipped")
            continue
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.isfile() or not member.name.endswith(".vbp"):
                    continue
                parts = member.name.split("/")
                name = parts[-1][:-4]
                m = _MOM_NAME.match(name)
                if m is None:
                    continue
                cls = parts[-2] if set_name == "Triplet" else m["cls"]
                files.append(InstanceFile(set_name, cls, name, int(m["n"]),
                                          f"tar:{archive}::{member.name}"))
    ct = root / CAPRARA_TOTH / "CT01"
    if ct.is_dir():
        for p in sorted(ct.glob("CL_*.vbp")):
            m = _CT_NAME.match(p.stem)
            if m is None:
                continue
            files.append(InstanceFile("CT01", f"CL_{int(m['k']):02d}", p.stem, int(m["n"]), str(p)))
    else:
        notes.append(f"{ct} not found: set CT01 skipped")
    files.sort(key=lambda f: (SETS.index(f.set), _natural(f.cls), _natural(f.name)))
    return files, notes


def _natural(s: str) -> tuple[object, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def read_texts(files: Iterable[InstanceFile]) -> dict[str, str]:
    """location -> file text, opening each archive once."""
    by_archive: dict[str, list[str]] = {}
    out: dict[str, str] = {}
    for f in files:
        if f.location.startswith("tar:"):
            archive, member = f.location[4:].split("::", 1)
            by_archive.setdefault(archive, []).append(member)
        else:
            out[f.location] = Path(f.location).read_text()
    for archive, members in by_archive.items():
        wanted = set(members)
        with tarfile.open(archive, mode="r|gz") as tar:  # one sequential pass per archive
            for member in tar:
                if member.name in wanted:
                    fh = tar.extractfile(member)
                    if fh is None:
                        raise VbpFormatError(f"{archive}: {member.name} is not a regular file")
                    out[f"tar:{archive}::{member.name}"] = fh.read().decode()
        missing = wanted - {k.split("::", 1)[1] for k in out if k.startswith(f"tar:{archive}::")}
        if missing:
            raise VbpFormatError(f"{archive}: members vanished: {sorted(missing)[:3]}")
    return out


def load_instances(root: Path, files: list[InstanceFile], seed: int) -> list[VbpInstance]:
    refs: dict[str, dict[str, Reference]] = {
        s: load_mommessin_references(root, s) for s in MOMMESSIN_SETS}
    refs["CT01"] = load_ct01_references(root)
    texts = read_texts(files)
    out = []
    for f in files:
        capacity, sizes = parse_vbp(texts[f.location], f.location)
        key = f"{f.set}/{f.name}"
        out.append(VbpInstance(f.set, f.cls, f.name, capacity, shuffle_items(sizes, key, seed),
                               refs[f.set].get(f.name), f.location))
    return out


def select(files: list[InstanceFile], tier: str,
           sets: Iterable[str] | None = None) -> list[InstanceFile]:
    """The tier's files. Membership goes by the size group in the file name (a Panigrahy class-9
    "60" file may hold 61 items: it still belongs to the n = 60 group); n itself is read from
    the file."""
    lo, hi = TIERS[tier]
    wanted = set(sets) if sets else None
    return [f for f in files
            if lo <= f.nominal_n <= hi and (wanted is None or f.set in wanted)]


def sample(instances: list[VbpInstance], tier: str, limit: int | None,
           seed: int) -> list[VbpInstance]:
    """At most `limit` instances per class, drawn with a seeded RNG (the same subset every run),
    kept in file order."""
    by_class: dict[str, list[VbpInstance]] = {}
    for inst in instances:
        by_class.setdefault(inst.klass, []).append(inst)
    out: list[VbpInstance] = []
    for klass, group in by_class.items():
        if limit is not None and limit < len(group):
            rng = random.Random(zlib.crc32(f"{tier}/{klass}".encode()) ^ seed)
            keep = {id(i) for i in rng.sample(group, limit)}
            group = [i for i in group if id(i) in keep]
        out.extend(group)
    return out


def round_robin(instances: list[VbpInstance], total: int | None) -> list[VbpInstance]:
    """The first `total` instances taking one class at a time, the sets interleaved (first class
    of every set, then the second, ...), so that a small cap spans sets and classes."""
    if total is None or total >= len(instances):
        return instances
    queues: dict[str, list[VbpInstance]] = {}
    for inst in instances:
        queues.setdefault(inst.klass, []).append(inst)
    rank: dict[str, int] = {}
    seen_per_set: dict[str, int] = {}
    for klass in queues:
        set_name = klass.split("/", 1)[0]
        rank[klass] = seen_per_set.get(set_name, 0)
        seen_per_set[set_name] = rank[klass] + 1
    order_of_classes = sorted(queues, key=lambda k: (rank[k], SETS.index(k.split("/", 1)[0])
                                                     if k.split("/", 1)[0] in SETS else 99))
    picked: list[VbpInstance] = []
    while len(picked) < total:
        for klass in order_of_classes:
            if queues[klass] and len(picked) < total:
                picked.append(queues[klass].pop(0))
    order = {id(i): k for k, i in enumerate(instances)}
    return sorted(picked, key=lambda i: order[id(i)])
