"""The official registry: where it lives and the root of trust deeting ships for it.

``deeting registry sync`` with no ``--url`` follows the registry this home follows, which is
this one until the user passes ``--url``. Its root ships inside the package
(``official/root.json``, with ``official/roots/`` for rotations), so syncing it never trusts
a root on first use: the shipped root, then the chain of rotations the registry publishes.
The URL is where ``.github/workflows/plugins.yml`` publishes (GitHub Pages of deeting/deeting).

For tests and mirrors, ``DEETING_OFFICIAL_REGISTRY_URL`` and ``DEETING_OFFICIAL_ROOT`` (a
root.json file) replace the two; they are no weaker than ``--url`` and ``--root``, which the
same user could pass.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["OFFICIAL_ROOT", "OFFICIAL_URL", "official_root", "official_url"]

OFFICIAL_URL = "https://deeting.github.io/deeting/registry.json"
OFFICIAL_ROOT = Path(__file__).parent / "official" / "root.json"
URL_ENV, ROOT_ENV = "DEETING_OFFICIAL_REGISTRY_URL", "DEETING_OFFICIAL_ROOT"


def official_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(URL_ENV) or OFFICIAL_URL


def official_root(env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The root file to trust for the official registry, and how to name it in errors."""
    env = os.environ if env is None else env
    override = env.get(ROOT_ENV)
    if override:
        return Path(override).expanduser(), f"{ROOT_ENV} {override}"
    return OFFICIAL_ROOT, f"deeting's official root ({OFFICIAL_ROOT})"
