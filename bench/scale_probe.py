"""The scale bench's probes: one ``deeting`` process each, timed or sampled from outside.

Each probe runs the venv's ``deeting`` in a home the scale bench built and measures what a
user would: ``--script`` start to reply and to exit, the process tree's memory while it is
alive, the tool specs one model call carries (a recording Chat Completions server on
127.0.0.1 stands in for the model), and a tool's first call against its warm calls.
Nothing here knows whether workers start eagerly or on demand: the figures are whatever
the code under test does.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import orjson

from deeting_tui.llm.model import ToolSpec

from .common import reap, spawn_child
from .throughput import deeting_executable
from .ui_launch import read_until, terminal_env

__all__ = [
    "ColdStart",
    "TreeMemory",
    "cold_start",
    "first_and_warm_calls",
    "spec_tokens",
    "tool_spec_turn",
    "tree_memory",
]

#: The message each probe sends: calc's own trigger routes it, on every size of home.
MESSAGE = "calc 2+3"
REPLY = b"2+3 = 5"
#: A free-text message no trigger matches, so it reaches the model with the tool specs.
MODEL_MESSAGE = "what is 12% of 340 for my mortgage?"
#: The call timed cold and warm, and what brings the kernel up without starting calc: a
#: message the offline assistant answers, and a call of clock's (its worker starts with the
#: kernel), so that what the kernel does once per process (loading the argument validator)
#: is done and the first /calc measures calc's own start on first use.
CALL = "/calc expr=1+1"
PRIMERS = ("hello", "/now")


@dataclass
class ColdStart:
    """Seconds from exec to the reply on stdout, and to the process's exit."""

    reply_s: float
    exit_s: float


@dataclass
class TreeMemory:
    """The process tree after one message: processes, and their summed PSS in KiB."""

    processes: int
    pss_kib: int


@dataclass
class _Run:
    """A ``deeting --script -`` child; its stderr goes to a file, not a pipe nobody reads
    while we wait on stdout (a chatty run must not block on a full pipe)."""

    process: subprocess.Popen[bytes]
    stderr: IO[bytes]


def _script(home: Path, *extra: str, env: dict[str, str] | None = None) -> _Run:
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _finish or _abandon)
    try:
        process = spawn_child(
            [deeting_executable(), "--script", "-", *extra],
            env=env or terminal_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    except BaseException:
        stderr.close()
        raise
    return _Run(process, stderr)


def _finish(run: _Run, what: str, output: bytearray) -> None:
    """Close stdin, read stdout to its end, let it exit (0), and say why not."""
    process = run.process
    assert process.stdin is not None and process.stdout is not None
    try:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        try:
            with contextlib.suppress(EOFError):
                read_until(process.stdout.fileno(), output, lambda: False, 120)
        except TimeoutError:
            raise RuntimeError(f"{what}: deeting --script still running 120 s after EOF") from None
        finally:
            reap(process)
            process.stdout.close()
        if process.returncode != 0:
            run.stderr.seek(0)
            err = run.stderr.read().decode(errors="replace").strip()[-600:]
            raise RuntimeError(f"{what}: deeting --script exited {process.returncode}: {err}")
    finally:
        run.stderr.close()


def _abandon(run: _Run) -> None:
    reap(run.process, timeout=0)
    run.stderr.close()


def _send(run: _Run, line: str) -> None:
    assert run.process.stdin is not None
    run.process.stdin.write(line.encode() + b"\n")
    run.process.stdin.flush()


def _stdout(run: _Run) -> int:
    assert run.process.stdout is not None
    return run.process.stdout.fileno()


def cold_start(home: Path) -> ColdStart:
    """``printf 'calc 2+3\\n' | deeting --script -``, timed from just before the exec."""
    began = time.perf_counter()
    run = _script(home)
    _send(run, MESSAGE)
    assert run.process.stdin is not None
    run.process.stdin.close()
    output = bytearray()
    try:
        replied = read_until(_stdout(run), output, lambda: REPLY in output, 120)
    except (TimeoutError, EOFError) as exc:
        _abandon(run)
        raise RuntimeError(f"cold start: no reply ({exc}); stdout: {bytes(output)!r}") from None
    _finish(run, "cold start", output)
    return ColdStart(replied - began, time.perf_counter() - began)


def tree_memory(home: Path) -> TreeMemory:
    """One message through ``deeting --script -`` with stdin kept open; once the reply is
    out, the process and every descendant (forkserver, workers) are sampled, then stdin is
    closed and it must exit 0."""
    run = _script(home)
    _send(run, MESSAGE)
    output = bytearray()
    try:
        read_until(_stdout(run), output, lambda: REPLY in output, 120)
        tree = descendants(run.process.pid)
        pss = sum(_pss_kib(pid) for pid in tree)
    except (TimeoutError, EOFError) as exc:
        _abandon(run)
        raise RuntimeError(f"memory: no reply ({exc}); stdout: {bytes(output)!r}") from None
    _finish(run, "memory", output)
    return TreeMemory(len(tree), pss)


def descendants(root: int) -> list[int]:
    """``root`` and every process under it, by parent pid (a forkserver is in its own
    session, so a session or group would miss it and its workers)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    tree = [root]
    for pid in tree:
        tree += children.get(pid, [])
    return tree


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):  # gone meanwhile, or a kernel without smaps_rollup
        pass
    return 0


# -- the tool specs a model call carries ------------------------------------------------------


def spec_tokens(spec: dict[str, Any]) -> int:
    """Estimated tokens of one spec: the tool budget's own estimate when this build has it
    (``llm/tool_budget.py``), else the same rule — the compact JSON bytes of its name,
    description and parameters, over 4."""
    tool = ToolSpec(
        str(spec.get("name")), str(spec.get("description")), spec.get("parameters") or {}
    )
    estimate = getattr(_tool_budget(), "spec_tokens", None)
    if estimate is not None:
        return int(estimate(tool))
    data = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    return max(1, len(orjson.dumps(data)) // 4)


@functools.cache
def _tool_budget() -> ModuleType | None:
    try:
        return importlib.import_module("deeting_tui.llm.tool_budget")
    except ImportError:  # a build before the tool budget
        return None


@dataclass
class SpecTurn:
    """One model call's tool specs: as recorded on the wire, and as deeting reported them
    on the ``--json`` reply event (None when this build reports nothing)."""

    sent: list[dict[str, Any]]
    reported: dict[str, int] | None


class _Recorder:
    """A Chat Completions endpoint on 127.0.0.1 that records each request and answers
    with a short streamed text (no tool calls: the turn is one model call)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                chunks = [
                    {"role": "assistant", "content": ""},
                    {"content": "ok"},
                ]
                lines = [_chunk(delta, None) for delta in chunks] + [_chunk({}, "stop")]
                body = "".join(f"data: {line}\n\n" for line in lines) + "data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join()


def _chunk(delta: dict[str, Any], finish: str | None) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def tool_spec_turn(home: Path) -> SpecTurn:
    """A free-text message to a model (the recorder) through ``deeting --script - --json``."""
    recorder = _Recorder()
    with recorder.running() as base_url:
        env = terminal_env(home)
        env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-bench")
        run = _script(home, "--json", "--provider", "openai", "--model", "bench-model", env=env)
        _send(run, MODEL_MESSAGE)
        output = bytearray()
        _finish(run, "tool specs", output)
    if len(recorder.bodies) != 1:
        raise RuntimeError(f"tool specs: {len(recorder.bodies)} model calls, expected 1")
    sent = [tool.get("function") or tool for tool in recorder.bodies[0].get("tools") or []]
    reported = None
    for line in output.splitlines():
        event = orjson.loads(line)
        if event.get("type") == "reply" and isinstance(event.get("tool_specs"), dict):
            reported = event["tool_specs"]
    return SpecTurn(sent, reported)


# -- a tool's first call against its warm calls ----------------------------------------------


def first_and_warm_calls(home: Path, warm: int) -> tuple[float, list[float]]:
    """In a fresh ``deeting --script - --json``: the kernel is brought up by :data:`PRIMERS`
    (a message, and a call of clock's, whose worker starts with the kernel), then
    ``/calc expr=1+1`` is sent ``1 + warm`` times, one at a time; seconds from each write to
    its reply event. Where workers start on demand the first of these starts calc's worker;
    where they start with the kernel it is already up."""
    run = _script(home, "--json")
    fd = _stdout(run)
    output = bytearray()

    def answered() -> int:
        return output.count(b'{"type":"reply"') + output.count(b'{"type":"error"')

    samples = []
    try:
        for n, primer in enumerate(PRIMERS, 1):
            _send(run, primer)
            read_until(fd, output, _at_least(answered, n), 120)
        for n in range(len(PRIMERS) + 1, len(PRIMERS) + warm + 2):
            began = time.perf_counter()
            _send(run, CALL)
            samples.append(read_until(fd, output, _at_least(answered, n), 60) - began)
    except (TimeoutError, EOFError) as exc:
        _abandon(run)
        raise RuntimeError(
            f"first call: no reply ({exc}); stdout: {bytes(output)[-600:]!r}"
        ) from None
    _finish(run, "first call", output)
    if b'{"type":"error"' in output:
        raise RuntimeError(f"first call: an error event: {bytes(output)[-600:]!r}")
    return samples[0], samples[1:]


def approx_tokens(specs: list[dict[str, Any]]) -> int:
    return sum(spec_tokens(spec) for spec in specs)


def _at_least(count: Callable[[], int], n: int) -> Callable[[], bool]:
    return lambda: count() >= n
