"""Import a plugin's ``src/`` so that both ``from .handler import x`` and ``import handler`` work.

Plugins run one per process, so the synthetic package name never collides; putting ``src`` on
``sys.path`` as well lets authors who write plain ``import handler`` run their code unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE_NAME = "deeting_plugin"


def import_plugin_module(src_dir: Path, module: str = "index") -> ModuleType:
    """Import ``src_dir/<module>.py`` as ``deeting_plugin.<module>``."""
    src = str(Path(src_dir).resolve())
    package = sys.modules.get(PACKAGE_NAME)
    if package is None or list(getattr(package, "__path__", [])) != [src]:
        for name in [
            m for m in sys.modules if m == PACKAGE_NAME or m.startswith(PACKAGE_NAME + ".")
        ]:
            del sys.modules[name]
        spec = importlib.util.spec_from_loader(PACKAGE_NAME, loader=None, is_package=True)
        assert spec is not None
        package = importlib.util.module_from_spec(spec)
        package.__path__ = [src]
        sys.modules[PACKAGE_NAME] = package
    if src not in sys.path:
        sys.path.insert(0, src)
    return importlib.import_module(f"{PACKAGE_NAME}.{module}")
