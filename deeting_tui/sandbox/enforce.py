"""Applies a worker's sandbox, in the one order that leaves no gap, before plugin code runs.

rlimits are set by the worker just before this. Then: namespaces (a user namespace of its
own when not root, so RLIMIT_NPROC counts this plugin only; a network namespace holding only
the proxy's listener for host-limited network, see namespaces.py) → ``no_new_privs`` (so no
setuid program can lift anything, and unprivileged Landlock/seccomp are allowed) → Landlock
(files, TCP ports, signal and abstract-socket scopes) → every capability dropped
(capabilities.py) → seccomp with thread sync (sockets, exec, other processes, IPC, sessions
and escape hatches) → the audit-hook guard (friendly errors, denial log). Landlock and
unshare act on the calling thread only, so the worker must still be single-threaded here;
this is checked, not assumed.

A layer the machine lacks (the capability probe says so) is skipped and the level says so;
a layer the machine has but that fails to apply stops the worker — running a plugin less
confined than reported would be worse than not running it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .guard import Guard
from .policy import (
    NETWORK_ANY,
    NETWORK_NONE,
    NETWORK_PROXY,
    SandboxPlan,
    ServerRuntime,
    plan_sandbox,
)
from .probe import Capabilities, probe
from .tunnel import install_tunnels

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")


class SandboxError(RuntimeError):
    """The sandbox could not be applied as planned; the worker must not run the plugin."""


@dataclass(frozen=True)
class Applied:
    """What the worker is actually held to; reported to the kernel in the handshake."""

    level: str
    landlock_abi: int
    seccomp: bool
    network: str
    exec_allowed: bool
    milliseconds: float
    capabilities: str = "not dropped"
    namespaces: dict[str, Any] = field(default_factory=dict)
    #: Milliseconds each step took (the benchmark reports what each layer costs).
    steps: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "landlock_abi": self.landlock_abi,
            "seccomp": self.seccomp,
            "network": self.network,
            "exec": self.exec_allowed,
            "capabilities": self.capabilities,
            "namespaces": self.namespaces,
            "ms": round(self.milliseconds, 3),
            "steps": {name: round(ms, 3) for name, ms in self.steps.items()},
        }


def plan_for(init: dict[str, Any]) -> SandboxPlan:
    """The plan for the ``initialize`` parameters the kernel sent."""
    scopes = init.get("scopes") or []
    tmp_dir = init.get("tmp_dir")
    proxy_port = init.get("proxy_port")
    kernel_pid = init.get("kernel_pid")
    return plan_sandbox(
        [s for s in scopes if isinstance(s, str)],
        runtime=server_runtime(init.get("mcp")),
        root=Path(init["root"]),
        data_dir=Path(init["data_dir"]),
        cache_dir=Path(init["cache_dir"]),
        tmp_dir=Path(tmp_dir) if isinstance(tmp_dir, str) else None,
        home=Path(init.get("home") or Path.home()),
        pid=os.getpid(),
        proxy_port=proxy_port if isinstance(proxy_port, int) else None,
        kernel_pid=kernel_pid if isinstance(kernel_pid, int) else None,
    )


def server_runtime(launch: object) -> ServerRuntime | None:
    """The runtime allowance of an MCP server's launch (``initialize``'s ``mcp``), if any."""
    if not isinstance(launch, dict):
        return None
    executables = launch.get("executables")
    if not isinstance(executables, list):
        raise SandboxError("the MCP server's launch names no runtime to allow")
    return ServerRuntime(
        tuple(str(p) for p in executables if isinstance(p, str) and p.startswith("/"))
    )


def enforce(
    init: dict[str, Any], plugin: str, report: Callable[[str, str | None], None] | None = None
) -> Applied:
    """Apply every available layer for this plugin's grants; raise SandboxError on failure.
    ``report`` hears each refusal the guard makes (its message, and the scope that would
    allow it, if any), for the kernel to tell the user."""
    began = time.perf_counter()
    plan = plan_for(init)
    caps = probe()
    landlock_abi = 0
    seccomp_on = False
    capabilities = "not dropped (no OS sandbox here)"
    entered = None
    steps: dict[str, float] = {}
    clock = _StepClock(steps)
    if caps.landlock_abi or caps.seccomp:
        _require_single_thread()
        from . import capabilities as capability_sets
        from . import landlock, namespaces, seccomp, seccomp_bpf, seccomp_rules  # where they apply

        limits = init.get("limits") if isinstance(init.get("limits"), dict) else {}
        tasks = limits.get("tasks") if isinstance(limits, dict) else None
        clock.lap("planning")
        entered = namespaces.enter(
            private_network=plan.network == NETWORK_PROXY,
            tasks=tasks if isinstance(tasks, int) and tasks > 0 else None,
        )
        clock.lap("namespaces")
        if entered.listener is not None:
            # The proxy is this namespace's own listener now, whatever port it got.
            plan = replace(plan, proxy_port=entered.listener[1])
        try:
            seccomp.set_no_new_privs()
            if caps.landlock_abi:
                landlock_abi = landlock.apply(_landlock_rules(plan, landlock))
            clock.lap("landlock")
            capabilities = capability_sets.drop_all().describe()
            clock.lap("capabilities")
            if caps.seccomp:
                seccomp.apply(_seccomp_policy(plan, seccomp_rules))
                seccomp_on = True
            clock.lap("seccomp")
        except (
            OSError,
            landlock.LandlockError,
            seccomp_bpf.SeccompError,
            capability_sets.CapabilityError,
        ) as exc:
            raise SandboxError(f"the OS sandbox could not be applied: {exc}") from exc
    if plan.proxy_port is not None:
        url = f"http://127.0.0.1:{plan.proxy_port}"
        for name in PROXY_VARIABLES:
            os.environ[name] = url
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = ""
    Guard(plugin, plan, report).install()
    if plan.proxy_port is not None:
        install_tunnels(plugin, plan.proxy_port)
    clock.lap("guard")
    level = Capabilities(
        caps.platform, landlock_abi, seccomp_on, caps.no_new_privs, caps.root
    ).level
    return Applied(
        level,
        landlock_abi,
        seccomp_on,
        plan.network,
        plan.exec_allowed,
        (time.perf_counter() - began) * 1000,
        capabilities,
        entered.as_json() if entered is not None else {},
        steps,
    )


class _StepClock:
    """Laps of perf_counter into ``steps`` (milliseconds per named step)."""

    def __init__(self, steps: dict[str, float]) -> None:
        self._steps = steps
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._steps[name] = (now - self._last) * 1000
        self._last = now


def _require_single_thread() -> None:
    if not sys.platform.startswith("linux"):
        return
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SandboxError(
            f"the worker has {threads} threads before its sandbox is applied; Landlock would "
            "leave the others unconfined"
        )


def _landlock_rules(plan: SandboxPlan, landlock: Any) -> Any:
    if plan.network == NETWORK_ANY:
        ports: tuple[int, ...] | None = None
    elif plan.proxy_port is not None:
        ports = (plan.proxy_port,)
    else:
        ports = ()
    return landlock.LandlockRules(
        read=plan.read,
        read_exec=plan.read_exec,
        write=plan.write,
        devices=plan.devices,
        tcp_connect_ports=ports,
        tcp_bind_ports=None if plan.network == NETWORK_ANY else (),
        scope_signals=True,
        scope_abstract_unix=True,
    )


def _seccomp_policy(plan: SandboxPlan, seccomp_rules: Any) -> Any:
    network = {NETWORK_NONE: "none", NETWORK_ANY: "any"}.get(plan.network, "proxy")
    return seccomp_rules.SeccompPolicy(
        network=network,
        exec_allowed=plan.may_execute,
        own_pid=os.getpid(),
        watch_files=plan.watch_files,
    )
