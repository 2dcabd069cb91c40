"""Input errors that name the object, the field path and the reason.

The loader collects every error of a batch instead of stopping at the first, so a user fixes
a whole file in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

# a field (`operator`, `values[0]`) or a resource name (`ephemeral-storage`, `nvidia.com/gpu`)
_FIELD = re.compile(r"^[a-z][-A-Za-z0-9_./]*(\[\d+\])?$")


class InputError(ValueError):
    """One bad field of one object: `Pod team-a/agent-7: spec.containers[0]...: reason`."""

    def __init__(self, obj: str, path: str, reason: str) -> None:
        self.obj = obj
        self.path = path
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.obj}: {where}{self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"object": self.obj, "field": self.path, "reason": self.reason}


class InputErrors(ValueError):
    """Every error found in one load, reported together."""

    def __init__(self, errors: Sequence[InputError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.errors)
        head = f"{n} input error{'s' if n != 1 else ''}"
        return head + ":\n" + "\n".join(f"  {e}" for e in self.errors)


def format_loc(loc: Iterable[int | str]) -> str:
    """('spec', 'containers', 0, 'name') -> 'spec.containers[0].name' (kube's field path style)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def from_validation_error(obj: str, exc: ValidationError, prefix: str = "") -> list[InputError]:
    """Turn pydantic's error list into kube-style field errors."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = format_loc(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = str(err["msg"])
        for noise in ("Value error, ", "Assertion failed, "):
            if msg.startswith(noise):
                msg = msg[len(noise):]
        head, sep, tail = msg.partition(": ")
        if sep and _FIELD.match(head) and err["type"] in ("value_error", "assertion_error"):
            # validators name a sub-field first ("operator: Invalid value: ..."): fold it into
            # the path
            path = f"{path}.{head}" if path else head
            msg = tail
        if err["type"] == "missing":
            msg = "Required value"
        elif err["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {err.get('input')!r})"
        errors.append(InputError(obj, path, msg))
    return errors
