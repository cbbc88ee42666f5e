"""What plugin code can import: its own ``src/``, its ``deps/``, the standard library and
deeting's SDK (``deeting_tui``) — never the libraries deeting itself runs on.

The worker process has deeting's dependencies loaded (orjson for the protocol, and whatever
the forkserver preloaded). A plugin that silently used them would work here and break the day
deeting drops or upgrades one, and a plugin that pins its OWN copy of one (an older orjson)
must get that copy. So, once the worker's own imports are done and before plugin code is
imported, :func:`isolate` narrows the interpreter's import machinery:

* ``sys.path`` becomes the plugin's ``src/``, the standard library's folders and its ``deps/``
  (in that order, as a venv has it; never site-packages or dist-packages);
* every module loaded from anywhere else leaves ``sys.modules`` (the worker's code keeps the
  module objects it already bound, so the protocol keeps working), and so do the import
  finders and path hooks ``.pth`` files added (an editable install's, distutils' shim);
  ``deeting_tui`` stays, and its submodules load through its own ``__path__``;
* a last finder turns an import of one of deeting's libraries into an ImportError that says
  what to do, instead of a bare "No module named 'yaml'".

Which names are deeting's libraries is read once, before isolating (in the forkserver, so a
worker pays nothing): the top-level names in the site folders, and which distribution (name
and version) ships each, for the message's suggested pin.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["DeetingLibraryFinder", "deeting_libraries", "isolate", "stdlib_folders", "warm"]

SITE_FOLDERS = ("site-packages", "dist-packages")


@functools.cache
def stdlib_folders() -> tuple[str, ...]:
    """The standard library's folders on this interpreter's path: the base installation's
    stdlib and platstdlib (never a venv's lib folder, which holds site-packages), lib-dynload
    and the zipped stdlib, in ``sys.path`` order."""
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    roots = {os.path.realpath(base[key]) for key in ("stdlib", "platstdlib")}
    zipped = f"python{sys.version_info[0]}{sys.version_info[1]}.zip"
    found: list[str] = []
    for entry in sys.path:
        if not entry:
            continue
        real = os.path.realpath(entry)
        if os.path.basename(real) == zipped or (_under_any(real, roots) and not _is_site(real)):
            found.append(entry)
    for root in sorted(roots):  # a path that lacked them (-I, -S) still gets the stdlib
        if not any(os.path.realpath(entry) == root for entry in found):
            found.append(root)
    return tuple(dict.fromkeys(found))


def _is_site(path: str) -> bool:
    return any(part in SITE_FOLDERS for part in Path(path).parts)


def _under_any(path: str, roots: set[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


@functools.cache
def deeting_libraries() -> dict[str, str]:
    """Top-level module name → ``Distribution==version`` for what is installed in the site
    folders of deeting's interpreter (the pin to suggest; ``""`` when no distribution is
    known for the name). Cheap: one listing per site folder and each dist-info's
    ``top_level.txt`` when it has one; without one, a distribution is matched by name."""
    libraries: dict[str, str] = {}
    for folder in _site_folders():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        pins: dict[str, str] = {}
        for entry in entries:
            if entry.endswith(".dist-info"):
                name, _, version = entry[: -len(".dist-info")].partition("-")
                pin = f"{name}=={version}"
                pins[_canonical(name)] = pin
                for top in _top_level(os.path.join(folder, entry)):
                    libraries.setdefault(top, pin)
        for entry in entries:
            module = _module_name(entry)
            if module is not None and module not in libraries:
                libraries[module] = pins.get(_canonical(module), "")
    return libraries


def _site_folders() -> list[str]:
    folders: list[str] = []
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars)
        folders.extend(paths[key] for key in ("purelib", "platlib"))
    folders.extend(entry for entry in sys.path if entry and _is_site(entry))
    return list(dict.fromkeys(folders))


def _top_level(dist_info: str) -> list[str]:
    try:
        with open(os.path.join(dist_info, "top_level.txt"), encoding="utf-8") as text:
            return [line.strip() for line in text if line.strip().isidentifier()]
    except (OSError, UnicodeDecodeError):
        return []


def _module_name(entry: str) -> str | None:
    """The importable top-level name a site folder entry provides, if any."""
    if entry.endswith((".dist-info", ".egg-info", ".pth")) or entry.startswith("__"):
        return None
    stem = entry.split(".", 1)[0]
    if not stem.isidentifier():
        return None
    if "." not in entry or entry.endswith((".py", ".so", ".pyd")):
        return stem
    return None


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


class DeetingLibraryFinder(importlib.abc.MetaPathFinder):
    """The last finder: a top-level import nothing else found, of a name deeting's own
    interpreter has installed, fails with what to add to requirements.txt."""

    def __init__(self, plugin: str, libraries: dict[str, str]) -> None:
        self.plugin = plugin
        self.libraries = libraries

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or "." in fullname or fullname not in self.libraries:
            return None
        pin = self.libraries[fullname] or f"{fullname}==VERSION"
        raise ModuleNotFoundError(
            f"plugin '{self.plugin}' imports '{fullname}', which is not in its "
            "requirements.txt — deeting's own libraries are not available to plugins; "
            f"add {pin} to requirements.txt",
            name=fullname,
        )


def isolate(plugin: str, src: Path, deps: Path) -> None:
    """Narrow imports to ``src``, ``deps``, the standard library and deeting_tui (see the
    module docstring). Run once, in the worker, after its own imports, before plugin code."""
    libraries = deeting_libraries()
    keep_roots = _keep_roots()
    own = _own_folder()
    for name, module in list(sys.modules.items()):
        if not _keeps(name, module, keep_roots, own):
            del sys.modules[name]
    sys.meta_path[:] = [finder for finder in sys.meta_path if _is_stdlib_object(finder)] + [
        DeetingLibraryFinder(plugin, libraries)
    ]
    sys.path_hooks[:] = [hook for hook in sys.path_hooks if _is_stdlib_object(hook)]
    # As in any environment, the stdlib before installed packages: a wheel cannot shadow it.
    sys.path[:] = [str(src), *stdlib_folders(), *([str(deps)] if deps.is_dir() else [])]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def _keeps(name: str, module: ModuleType | None, stdlib: set[str], own: str) -> bool:
    """Whether a loaded module stays visible: built-in, frozen, stdlib, or deeting_tui."""
    if name == "deeting_tui" or name.startswith("deeting_tui."):
        return True
    if module is None:
        return False
    where = getattr(module, "__file__", None)
    if where is None:
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None)
        if origin in ("built-in", "frozen") or name in sys.builtin_module_names:
            return True
        locations = list(getattr(module, "__path__", None) or [])
        if not locations:
            return spec is None  # a module made in memory (``__main__`` and the like)
        where = locations[0]
    return _file_keeps(str(where), frozenset(stdlib), own)


@functools.cache
def _file_keeps(where: str, stdlib: frozenset[str], own: str) -> bool:
    """Whether a module loaded from ``where`` stays; cached, and warmed in the forkserver
    (:func:`warm`), so a worker does not resolve two hundred paths as it starts."""
    real = os.path.realpath(where)
    if _is_site(real):
        return False
    return _under_any(real, set(stdlib)) or real == own or real.startswith(own + os.sep)


def warm() -> None:
    """Do the slow parts of :func:`isolate` ahead, in the forkserver: which libraries are
    deeting's, the stdlib folders, and the verdict on every module loaded so far."""
    deeting_libraries()
    keep_roots = _keep_roots()
    own = _own_folder()
    for name, module in list(sys.modules.items()):
        _keeps(name, module, keep_roots, own)


def _keep_roots() -> set[str]:
    return {os.path.realpath(folder) for folder in stdlib_folders()}


@functools.cache
def _own_folder() -> str:
    return os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _is_stdlib_object(obj: object) -> bool:
    """A finder or path hook of the import system itself (frozen importlib, zipimport)."""
    module = str(getattr(obj, "__module__", None) or getattr(type(obj), "__module__", ""))
    return module in ("_frozen_importlib", "_frozen_importlib_external", "zipimport") or (
        module.startswith("importlib.") and module != "importlib.metadata"
    )
