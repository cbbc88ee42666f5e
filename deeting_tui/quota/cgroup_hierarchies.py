"""Which cgroup hierarchies this machine lets the kernel make cgroups in (found, not changed).

Two kinds help:

* **cgroup v2**, where the kernel may write to its own cgroup (root, or a subtree systemd
  delegated to the user): one cgroup per worker, ``cgroup.kill`` to end everything in it at
  once, and the ``memory``/``pids``/``cpu`` controllers if the kernel's own cgroup already
  hands them down (we never change a cgroup we did not make);
* **cgroup v1** hierarchies for ``pids``, ``memory`` and ``cpu``, where writable (as root on
  a hybrid machine, where v2 has no controllers).

Reading /proc/self/cgroup and mountinfo is pure (``parse_hierarchies``), so every layout can
be tested on any machine; ``Cgroups`` keeps the hierarchies we may write to and says which
enforces what (``describe()``). Making and killing cgroups is cgroups.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("pids", "memory", "cpu")


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and the kernel's own cgroup in it."""

    version: int
    controllers: frozenset[str]  # v1: bound to it; v2: handed down to our children
    base: Path

    def label(self, controller: str | None = None) -> str:
        return f"cgroup v{self.version}" + (f" {controller}" if controller else "")


def parse_hierarchies(self_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """The hierarchies mounted here, each with our own cgroup as its base (pure: the texts
    of /proc/self/cgroup and /proc/self/mountinfo in, no file touched). v2 controllers are
    filled in by :meth:`Cgroups.detect`, which may read files."""
    own_v2: str | None = None
    own_v1: dict[str, str] = {}
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, names, path = parts
        if number == "0" and names == "":
            own_v2 = path
        else:
            for name in names.split(","):
                own_v1[name] = path
    found: list[Hierarchy] = []
    seen: set[tuple[int, frozenset[str]]] = set()
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2" and own_v2 is not None:
            version, controllers, own = 2, frozenset[str](), own_v2
        elif fstype == "cgroup":
            controllers = frozenset(options) & frozenset(CONTROLLERS)
            if not controllers:
                continue
            version, own = 1, own_v1.get(next(iter(sorted(controllers))), "")
            if not own:
                continue
        else:
            continue
        if (version, controllers) in seen:
            continue  # the same hierarchy mounted twice: the first mount will do
        relative = _below(own, root)
        if relative is None:
            continue  # our cgroup is not visible through this mount
        seen.add((version, controllers))
        found.append(Hierarchy(version, controllers, Path(mountpoint) / relative))
    return found


def _below(path: str, root: str) -> str | None:
    if root == "/":
        return path.lstrip("/")
    if path == root:
        return ""
    if path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return None


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK) and os.access(folder / "cgroup.procs", os.W_OK)


def _kernel_has_cgroup_kill() -> bool:
    """cgroup.kill came with Linux 5.14; the root cgroup has none to look at."""
    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


@dataclass(frozen=True)
class Cgroups:
    """What this machine lets the kernel do with cgroups (found once; writes nothing)."""

    v2: Hierarchy | None = None  # containment with cgroup.kill
    controllers: dict[str, Hierarchy] = field(default_factory=dict)  # name -> where enforced

    @classmethod
    def detect(cls, proc: Path = Path("/proc")) -> Cgroups:
        try:
            self_cgroup = (proc / "self" / "cgroup").read_text()
            mountinfo = (proc / "self" / "mountinfo").read_text()
        except OSError:
            return cls()
        return cls.from_hierarchies(parse_hierarchies(self_cgroup, mountinfo))

    @classmethod
    def from_hierarchies(
        cls, hierarchies: list[Hierarchy], cgroup_kill: bool | None = None
    ) -> Cgroups:
        """Keep the writable ones; v2 only with cgroup.kill. Reads each base's files."""
        v2: Hierarchy | None = None
        controllers: dict[str, Hierarchy] = {}
        kill = _kernel_has_cgroup_kill() if cgroup_kill is None else cgroup_kill
        for hierarchy in hierarchies:
            if not _writable(hierarchy.base):
                continue
            if hierarchy.version == 2 and kill and v2 is None:
                try:
                    handed_down = (hierarchy.base / "cgroup.subtree_control").read_text().split()
                except OSError:
                    handed_down = []
                v2 = Hierarchy(2, frozenset(handed_down) & frozenset(CONTROLLERS), hierarchy.base)
                for name in v2.controllers:
                    controllers[name] = v2
        for hierarchy in hierarchies:
            if hierarchy.version == 1 and _writable(hierarchy.base):
                for name in hierarchy.controllers:
                    controllers.setdefault(name, hierarchy)
        return cls(v2, controllers)

    @property
    def usable(self) -> bool:
        return self.v2 is not None or bool(self.controllers)

    def hierarchies(self) -> list[Hierarchy]:
        """Every hierarchy a worker gets a cgroup in (v2 first)."""
        found = [self.v2] if self.v2 is not None else []
        for hierarchy in self.controllers.values():
            if hierarchy not in found:
                found.append(hierarchy)
        return found

    def describe(self) -> dict[str, str | None]:
        """Which cgroup enforces what: ``containment`` and each controller (None: no cgroup)."""
        found: dict[str, str | None] = {
            "containment": "cgroup v2 (cgroup.kill)" if self.v2 is not None else None
        }
        for name in CONTROLLERS:
            hierarchy = self.controllers.get(name)
            found[name] = hierarchy.label(name) if hierarchy is not None else None
        return found
