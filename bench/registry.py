"""What a client pays to trust a large registry: ``trust.verify_registry`` on 1,000 plugins.

**The registry** is built in memory the way the registry tools publish one: N plugins of
three versions each, every version with a release URL, sha256, length, its own Ed25519
artifact signature, a description and permissions; the whole signed with
``signing.envelope`` by one key (threshold 1). For 1,000 plugins that is about 1 MB. The
bytes are the same on every run (fixed key, fixed contents).

**Timed** is bytes in to a verified ``Registry`` out: the envelope parsed, the signature
checked, the signed text parsed, and every plugin and version checked and turned into an
``Artifact``. The baseline, on the same bytes and in the same run, is the floor any
verifier must pay: ``orjson.loads`` of the envelope and one Ed25519 verify of the signed
text. A reference row adds the second parse (the signed text) to the floor, so what is left
between it and ``verify_registry`` is our per-entry checking. The three take turns (rotating
who goes first) after a warm-up, with an untimed ``gc.collect()`` before each run so that
one run's garbage is not charged to the next.

``python -m bench.registry [--quick] [--json]`` runs this section alone; ``python -m bench``
runs it with the others.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from nacl.signing import SigningKey, VerifyKey

from deeting_tui.store import signing, trust

from .common import percentile_ms, table_lines, verdict_lines

#: Target (issue 6, point 7).
VERIFY_MS_MAX = 100.0

#: The clock reading every run verifies against; the registry expires a week later.
NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
PERMISSIONS = (
    "network:api.open-meteo.com",
    "filesystem:read:/proc",
    "filesystem:write:$DATA",
    "clipboard",
    "notifications",
)
WORDS = (
    "weather", "notes", "clock", "calc", "sysinfo", "git",
    "docker", "todo", "rss", "timer", "jira", "slack",
)  # fmt: skip


@dataclass
class RegistrySizes:
    plugins: int = 1000
    versions: int = 3
    runs: int = 50
    warmup: int = 3

    @classmethod
    def quick(cls) -> RegistrySizes:
        return cls(plugins=1000, versions=3, runs=5, warmup=1)


@dataclass
class Timing:
    """Seconds per run of one way of reading the registry."""

    name: str
    samples: list[float] = field(repr=False)

    @property
    def p50_ms(self) -> float:
        return percentile_ms(self.samples, 50)

    def as_json(self) -> dict[str, Any]:
        return {
            "n": len(self.samples),
            "p50_ms": round(self.p50_ms, 3),
            "max_ms": round(percentile_ms(self.samples, 100), 3),
            "mean_ms": round(statistics.fmean(self.samples) * 1e3, 3),
        }

    def row(self) -> tuple[str, ...]:
        data = self.as_json()
        return (
            self.name,
            str(data["n"]),
            f"{data['p50_ms']:.2f} ms",
            f"{data['max_ms']:.2f} ms",
            f"{data['mean_ms']:.2f} ms",
        )


@dataclass
class RegistryFigures:
    plugins: int
    versions: int
    size: int  # bytes of registry.json
    build_s: float  # building and signing it (for scale; not a target)
    verify: Timing
    floor: Timing
    floor_parsed: Timing
    sync: Timing | None = None  # a no-change `deeting registry sync`, end to end
    get_304: Timing | None = None  # its baseline: one conditional GET, nothing else
    sync_requests: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """verify_registry p50 over the floor's p50 (1.0 = nothing beyond the floor)."""
        return self.verify.p50_ms / self.floor.p50_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "plugins": self.plugins,
            "versions_per_plugin": self.versions,
            "registry_bytes": self.size,
            "build_s": round(self.build_s, 3),
            "verify": self.verify.as_json(),
            "floor": self.floor.as_json(),
            "floor_with_parse": self.floor_parsed.as_json(),
            "ratio_to_floor": round(self.ratio, 2),
            **(
                {
                    "no_change_sync": self.sync.as_json(),
                    "conditional_get": self.get_304.as_json(),
                    "no_change_sync_requests": len(self.sync_requests),
                }
                if self.sync and self.get_304
                else {}
            ),
        }

    def rows(self) -> list[tuple[str, ...]]:
        """Rows for the report's table, five columns like the others'."""
        title = (
            f"registry.json: {self.plugins} plugins x {self.versions} versions, "
            f"{self.size / 1e6:.2f} MB"
        )
        return [
            (title, "n", "p50", "max", "mean"),
            self.verify.row(),
            self.floor.row(),
            self.floor_parsed.row(),
            ("verify_registry / floor, p50", f"{self.ratio:.1f}x", "", "", ""),
            *(
                [
                    ("", "", "", "", ""),
                    ("no-change sync (loopback HTTP, ETag)", "n", "p50", "max", "mean"),
                    self.sync.row(),
                    self.get_304.row(),
                    (
                        "requests per no-change sync",
                        str(len(self.sync_requests)),
                        " ".join(f"{m} {p} {s}" for m, p, s in self.sync_requests),
                        "",
                        "",
                    ),
                ]
                if self.sync and self.get_304
                else []
            ),
        ]

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        """(target, measured, limit, passed, value), for the report's verdict table."""
        p50 = self.verify.p50_ms
        return [
            (
                f"verify a {self.plugins}-plugin registry p50 <= 100 ms",
                f"{p50:.1f} ms ({self.ratio:.1f}x the floor, {self.floor.p50_ms:.1f} ms)",
                f"<= {VERIFY_MS_MAX:g} ms",
                p50 <= VERIFY_MS_MAX,
                p50,
            ),
            *(
                [
                    (
                        "a no-change sync costs one conditional request",
                        ", ".join(f"{m} {p} -> {s}" for m, p, s in self.sync_requests),
                        "= 1 (304)",
                        [status for _m, _p, status in self.sync_requests] == [304],
                        float(len(self.sync_requests)),
                    )
                ]
                if self.sync
                else []
            ),
        ]


# -- the registry -----------------------------------------------------------------------------


def signing_key() -> SigningKey:
    return SigningKey(hashlib.sha256(b"deeting bench registry key").digest())


def root_for(key: SigningKey) -> trust.Root:
    public = bytes(key.verify_key)
    document = {
        "_type": "deeting-root",
        "spec_version": signing.SPEC_VERSION,
        "version": 1,
        "expires": trust.format_time(NOW + timedelta(days=365)),
        "threshold": 1,
        "keys": {signing.key_id(public): {"keytype": "ed25519", "public": public.hex()}},
    }
    return trust.verify_root(signing.envelope(document, [key]), now=NOW)


def build_registry(plugins: int, versions: int, key: SigningKey) -> bytes:
    """A registry as the tools would publish it; realistic lengths for every field."""
    listed: dict[str, Any] = {}
    for i in range(plugins):
        name = f"{WORDS[i % len(WORDS)]}-{i:04d}"
        entry_versions = {}
        for v in range(versions):
            version = f"{1 + i % 3}.{v}.{i % 7}" + ("-rc.1" if v == versions - 1 else "")
            sha256 = hashlib.sha256(f"{name}@{version}".encode()).hexdigest()
            length = 4096 + (i * 7919 + v * 104729) % 200_000
            message = signing.artifact_message(name, version, sha256, length)
            entry_versions[version] = {
                "url": f"https://github.com/deeting/plugins/releases/download/"
                f"{name}-{version}/{name}-{version}.zip",
                "sha256": sha256,
                "length": length,
                "signatures": signing.signatures_for(message, [key]),
            }
        listed[name] = {
            "description": f"{WORDS[i % len(WORDS)].capitalize()} tools for the shell: "
            f"commands, a live card and triggers (plugin {i} of {plugins}).",
            "permissions": list(PERMISSIONS[: i % 3 + 1]),
            "versions": entry_versions,
        }
    document = {
        "_type": "deeting-registry",
        "spec_version": signing.SPEC_VERSION,
        "version": 1042,
        "expires": trust.format_time(NOW + timedelta(days=7)),
        "root_version": 1,
        "plugins": listed,
    }
    return signing.envelope(document, [key])


# -- the runs ---------------------------------------------------------------------------------


def floor(raw: bytes, public: bytes) -> None:
    """The least any verifier does: read the envelope, check one signature over the text."""
    outer = orjson.loads(raw)
    signature = outer["signatures"][0]
    VerifyKey(public).verify(outer["signed"].encode(), bytes.fromhex(signature["sig"]))


def floor_with_parse(raw: bytes, public: bytes) -> None:
    outer = orjson.loads(raw)
    signature = outer["signatures"][0]
    signed = outer["signed"].encode()
    VerifyKey(public).verify(signed, bytes.fromhex(signature["sig"]))
    orjson.loads(signed)


def registry_figures(sizes: RegistrySizes) -> RegistryFigures:
    key = signing_key()
    public = bytes(key.verify_key)
    root = root_for(key)
    began = time.perf_counter()
    raw = build_registry(sizes.plugins, sizes.versions, key)
    build_s = time.perf_counter() - began

    registry = trust.verify_registry(raw, root, now=NOW)  # it must verify, and fully
    artifacts = sum(len(versions) for versions in registry.plugins.values())
    if artifacts != sizes.plugins * sizes.versions:
        expected = sizes.plugins * sizes.versions
        raise RuntimeError(f"the built registry holds {artifacts} artifacts, not {expected}")

    timings = [
        Timing("trust.verify_registry", []),
        Timing("floor: orjson.loads + 1 Ed25519 verify", []),
        Timing("floor + parsing the signed text", []),
    ]
    runs: list[Callable[[], Any]] = [
        lambda: trust.verify_registry(raw, root, now=NOW),
        lambda: floor(raw, public),
        lambda: floor_with_parse(raw, public),
    ]
    order = list(range(len(runs)))
    clock = time.perf_counter
    for turn in range(sizes.warmup + sizes.runs):
        for index in order:
            gc.collect()
            began = clock()
            runs[index]()
            elapsed = clock() - began
            if turn >= sizes.warmup:
                timings[index].samples.append(elapsed)
        order = order[1:] + order[:1]
    verify, floor_timing, parsed = timings
    figures = RegistryFigures(
        sizes.plugins, sizes.versions, len(raw), build_s, verify, floor_timing, parsed
    )
    asyncio.run(_no_change_sync(figures, raw, key, max(3, sizes.runs // 5)))
    return figures


async def _no_change_sync(figures: RegistryFigures, raw: bytes, key: SigningKey, runs: int) -> None:
    """``RegistryClient.sync`` against a loopback server when nothing changed, counting the
    requests it makes; the baseline is one conditional GET of the same file with httpx."""
    import httpx

    from deeting_tui.paths import resolve_paths
    from deeting_tui.store.client import RegistryClient
    from registry_tools import serve

    with tempfile.TemporaryDirectory(prefix="deeting-bench-registry-") as tmp:
        site, home = Path(tmp) / "site", Path(tmp) / "home"
        site.mkdir()
        (site / "registry.json").write_bytes(raw)
        root_file = site / "root.json"
        root_file.write_bytes(root_for(key).raw)
        paths = resolve_paths({"DEETING_HOME": str(home)})
        client = RegistryClient(paths, clock=lambda: NOW)
        with serve.start(site) as server:
            url = server.url + "registry.json"
            await client.sync([], url, root_file)  # nothing installed: no update to find
            etag = client.files.meta().etag or ""
            sync, get = Timing("deeting registry sync (no change)", []), Timing("", [])
            get.name = "baseline: one conditional GET (httpx)"
            async with httpx.AsyncClient(trust_env=False) as http:
                for _ in range(runs):
                    server.server.served.clear()
                    began = time.perf_counter()
                    report = await client.sync([])
                    sync.samples.append(time.perf_counter() - began)
                    if not report.not_modified:
                        raise RuntimeError("a no-change sync fetched the registry again")
                    figures.sync_requests = list(server.server.served)
                    began = time.perf_counter()
                    answer = await http.get(url, headers={"If-None-Match": etag})
                    get.samples.append(time.perf_counter() - began)
                    if answer.status_code != 304:
                        raise RuntimeError(f"the baseline GET got {answer.status_code}")
    figures.sync, figures.get_304 = sync, get


# -- the section ------------------------------------------------------------------------------


def _report(figures: RegistryFigures) -> str:
    lines = table_lines(figures.rows())
    lines.append(f"built and signed in {figures.build_s:.2f} s (not timed above)")
    lines += ["", *verdict_lines(figures.verdicts())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.registry", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    options = parser.parse_args(argv)
    figures = registry_figures(RegistrySizes.quick() if options.quick else RegistrySizes())
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(_report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
