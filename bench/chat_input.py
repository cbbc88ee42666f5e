"""The chat with big input (issue 13): opening big sessions, and keys in a long input line.

In a child process (its own ``DEETING_HOME``), ``DeetingApp`` runs headless (``run_test``,
80x24) with the offline assistant. Three sessions are stored first, straight into the session
store: an empty one (the baseline), one of 10,000 events (5,000 user messages and their
replies) and one holding a single 5 MB message (stored as a session from before the 1 MiB cap
would hold it). Opening is timed from the call of ``open_session`` (read the events, draw
them) to the next painted frame, each session opened in turn, several times.

Keys: 8,000 characters arrive as one burst (a paste without bracketed paste: one key event
each, posted from a thread as Textual's driver does), timed to the moment the input holds them
all. Then single keys (``x`` and Backspace in turn, ``bench.ui_flood.KeyProbe``) are timed from the
post to the change of the input's value, first in the empty input (the baseline), then with
the 8,000 characters in it.

``python -m bench.chat_input [--quick] [--json]`` runs this section alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .common import REPO_ROOT, child_env, percentile_ms

#: Targets (issue 13): a session opens, and a key shows, as fast as the user notices.
OPEN_MS_MAX = 1000.0
KEY_MS_MAX = 100.0

TYPED_CHARS = 8000
BIG_SESSION_EVENTS = 10_000
BIG_MESSAGE_BYTES = 5 * 1024 * 1024


@dataclass
class ChatInputSizes:
    open_runs: int = 5
    keys: int = 100
    key_interval: float = 0.02

    @classmethod
    def quick(cls) -> ChatInputSizes:
        return cls(open_runs=1, keys=20, key_interval=0.02)


@dataclass
class ChatInputFigures:
    open_ms: dict[str, list[float]]  # session name → each opening, in ms
    burst_s: float  # 8,000 keys in one burst, to all in the input
    key_empty: list[float]  # seconds
    key_long: list[float]

    def as_json(self) -> dict[str, Any]:
        def keys(samples: list[float]) -> dict[str, Any]:
            return {
                "n": len(samples),
                "p50_ms": round(percentile_ms(samples, 50), 3),
                "p95_ms": round(percentile_ms(samples, 95), 3),
                "max_ms": round(percentile_ms(samples, 100), 3),
            }

        return {
            "open_session_ms": {
                name: {
                    "n": len(ms),
                    "median": round(statistics.median(ms), 1),
                    "max": round(max(ms), 1),
                }
                for name, ms in self.open_ms.items()
            },
            "burst_8000_keys_s": round(self.burst_s, 3),
            "key_latency_empty_input": keys(self.key_empty),
            "key_latency_8000_chars": keys(self.key_long),
        }

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """For ``python -m bench``'s results table: name, n, p50, p95, max."""
        rows = [("chat: opening a session (to the frame)", "n", "median", "", "max")]
        for name, ms in self.open_ms.items():
            rows.append(
                (
                    f"  {name}",
                    str(len(ms)),
                    f"{statistics.median(ms):.1f} ms",
                    "",
                    f"{max(ms):.1f} ms",
                )
            )
        rows.append(("chat: 8,000 keys in one burst", "1", f"{self.burst_s:.3f} s", "", ""))
        rows.append(("chat: key latency", "n", "p50", "p95", "max"))
        for label, samples in (
            ("  empty input (baseline)", self.key_empty),
            ("  8,000 characters typed", self.key_long),
        ):
            rows.append(
                (
                    label,
                    str(len(samples)),
                    f"{percentile_ms(samples, 50):.2f} ms",
                    f"{percentile_ms(samples, 95):.2f} ms",
                    f"{percentile_ms(samples, 100):.2f} ms",
                )
            )
        return rows

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        worst_open = max(max(ms) for ms in self.open_ms.values())
        key_p95 = percentile_ms(self.key_long, 95)
        return [
            (
                "chat: opening any session (10,000 events, a 5 MB message), worst",
                f"{worst_open:.0f} ms",
                f"<= {OPEN_MS_MAX:g} ms",
                worst_open <= OPEN_MS_MAX,
                worst_open,
            ),
            (
                "chat: key latency with 8,000 characters typed, p95",
                f"{key_p95:.2f} ms",
                f"<= {KEY_MS_MAX:g} ms",
                key_p95 <= KEY_MS_MAX,
                key_p95,
            ),
        ]


def _store_sessions(home: Path) -> dict[str, str]:
    from deeting_tui.kernel.sessions.encoding import encode_event
    from deeting_tui.kernel.sessions.store import SessionStore
    from deeting_tui.paths import resolve_paths

    os.environ["DEETING_HOME"] = str(home)
    paths = resolve_paths()
    with SessionStore(paths.data_dir / "sessions.sqlite3") as store:
        empty = store.create("empty")
        big = store.create("10,000 events")
        events = []
        for n in range(BIG_SESSION_EVENTS // 2):
            events.append(encode_event(big.id, "user", {"text": f"message {n}"}))
            events.append(encode_event(big.id, "reply", {"text": f"reply **{n}**"}))
        store.append_encoded(events)
        huge = store.create("one 5 MB message")
        store.append(huge.id, "user", {"text": "x" * BIG_MESSAGE_BYTES})
    return {"empty (baseline)": empty.id, "10,000 events": big.id, "one 5 MB message": huge.id}


def _shows_last(app: Any, name: str) -> bool:
    """Whether the chat shows the session's last event."""
    from deeting_tui.ui.widgets.transcript import AssistantReply, UserLine

    if name.startswith("empty"):
        return True
    if name.startswith("10,000"):
        last = f"reply **{BIG_SESSION_EVENTS // 2 - 1}**"
        return any(reply.source == last for reply in app.chat.query(AssistantReply))
    return bool(app.chat.query(UserLine))


async def _child(home: Path, sizes: ChatInputSizes) -> dict[str, Any]:
    from textual import events

    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.llm.offline import OfflineAssistant
    from deeting_tui.paths import resolve_paths
    from deeting_tui.ui.app import DeetingApp

    from .ui_flood import KeyProbe

    sessions = _store_sessions(home)
    app = DeetingApp(Kernel(resolve_paths(), assistant=OfflineAssistant()))
    opened: dict[str, list[float]] = {name: [] for name in sessions}
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.started.is_set():  # the kernel starts after the first frame
            await pilot.pause()
        for _ in range(sizes.open_runs):
            for name, session_id in sessions.items():
                began = time.perf_counter()
                await app.open_session(session_id)
                while not _shows_last(app, name):  # drawn (before issue 13: one message each)
                    await asyncio.sleep(0.001)
                await pilot.pause()  # laid out and painted
                opened[name].append((time.perf_counter() - began) * 1000)
        await app.open_session(sessions["empty (baseline)"])
        await pilot.pause()
        prompt = app.chat.query_one("#prompt")
        probe = KeyProbe(app, prompt)
        empty = await probe.run(sizes.keys, sizes.key_interval)

        def burst() -> None:
            for _ in range(TYPED_CHARS):
                key = events.Key("a", "a")
                key.set_sender(app)
                app.post_message(key)

        began = time.perf_counter()
        threading.Thread(target=burst, daemon=True).start()
        while len(prompt.value) < TYPED_CHARS:  # type: ignore[attr-defined]
            await asyncio.sleep(0.005)
        burst_s = time.perf_counter() - began
        await pilot.pause()
        long = await probe.run(sizes.keys, sizes.key_interval)
    return {"open_ms": opened, "burst_s": burst_s, "key_empty": empty, "key_long": long}


def chat_input_figures(sizes: ChatInputSizes) -> ChatInputFigures:
    with tempfile.TemporaryDirectory(prefix="deeting-bench-chat-") as folder:
        out = Path(folder) / "figures.json"
        args = [sys.executable, "-m", "bench.chat_input", "--child", folder, str(out)]
        args += ["--quick"] if sizes == ChatInputSizes.quick() else []
        subprocess.run(args, cwd=REPO_ROOT, env=child_env(), check=True, timeout=600)
        raw = orjson.loads(out.read_bytes())
    return ChatInputFigures(raw["open_ms"], raw["burst_s"], raw["key_empty"], raw["key_long"])


def report(figures: ChatInputFigures) -> str:
    data = figures.as_json()
    lines = ["opening a session (open_session to the next frame), 80x24:"]
    for name, row in data["open_session_ms"].items():
        lines.append(f"  {name:<28} median {row['median']:>8.1f} ms   max {row['max']:>8.1f} ms")
    lines.append(f"8,000 keys in one burst, all in the input: {figures.burst_s:.3f} s")
    for label, key in (
        ("empty input (baseline)", "key_latency_empty_input"),
        ("8,000 characters typed", "key_latency_8000_chars"),
    ):
        row = data[key]
        lines.append(
            f"key latency, {label:<24} p50 {row['p50_ms']:>7.2f} ms   p95 {row['p95_ms']:>7.2f} ms"
            f"   max {row['max_ms']:>7.2f} ms"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat_input", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    sizes = ChatInputSizes.quick() if options.quick else ChatInputSizes()
    if options.child:
        home, out = options.child
        Path(out).write_bytes(orjson.dumps(asyncio.run(_child(Path(home) / "home", sizes))))
        return 0
    os.chdir(REPO_ROOT)
    figures = chat_input_figures(sizes)
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
