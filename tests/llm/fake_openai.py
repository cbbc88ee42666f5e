"""A fake OpenAI-compatible Chat Completions server for tests: real HTTP on 127.0.0.1.

It answers ``POST /v1/chat/completions`` from a script of canned :class:`Reply` objects, one
per request in order, and records every request so a test can assert what the model was
sent. Three ways to run it:

In the test's event loop::

    async with FakeOpenAI([Reply.text("Hello", " world")]) as server:
        provider = OpenAIProvider("m", base_url=server.base_url)
        ...
        assert server.requests[0]["messages"][0]["role"] == "system"

In a thread, for synchronous tests (a ``deeting`` subprocess can connect to it)::

    fake = FakeOpenAI([Reply.tool_calls(FakeCall("echo", {"text": "hi"})), Reply.text("done")])
    with fake.running_in_thread() as server:
        subprocess.run([...], env={**os.environ, "OPENAI_BASE_URL": server.base_url})

As a process (stdlib only, so any Python runs it)::

    python tests/llm/fake_openai.py --script SCRIPT.json [--record REQUESTS.jsonl]

prints its base URL (``http://127.0.0.1:PORT/v1``) as the first line on stdout and serves
until SIGTERM/SIGINT. SCRIPT.json is a list of reply specs (see :meth:`Reply.from_json`);
``--record`` appends each request as a JSON line ``{"path", "headers", "body"}``.

When the script runs out, or a request hits another path, the server answers 400 or 404
with an OpenAI-style error saying so, which a provider turns into a non-retryable error. A
conversation that breaks the tool-call rules (see :func:`problems`) gets the API's 400.
Each response closes its connection (``Connection: close``), so a stream ends at EOF.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["FakeCall", "FakeOpenAI", "Reply", "chunk", "problems"]

CHAT_PATH = "/v1/chat/completions"


def chunk(
    content: str | None = None,
    *,
    role: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` as OpenAI streams it; ``choices=False`` gives the
    usage-only chunk (``"choices": []``) that ends an ``include_usage`` stream."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        if choices
        else [],
    }
    if usage is not None:
        prompt, completion = usage
        out["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return out


@dataclass(frozen=True)
class FakeCall:
    """A tool call for :meth:`Reply.tool_calls`. ``arguments`` is a dict (sent as its JSON)
    or a string sent as is (for arguments that are not valid JSON); ``id`` defaults to
    ``call_fake_{index}``."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass
class Reply:
    """One canned answer. Build it with the class methods; the fields are the wire:

    ``status`` and ``body`` (JSON, or a string sent as text) for an answer that is not a
    stream; ``lines`` for a 200 stream, each sent as ``line + "\\n\\n"``; ``hang`` to go
    silent afterwards (with no lines: never even send the status line) until the server stops.
    """

    status: int = 200
    body: Any = None
    lines: list[str] = field(default_factory=list)
    hang: bool = False

    @classmethod
    def stream(cls, chunks: Iterable[dict[str, Any]], *, done: bool = True) -> Reply:
        """Stream these chunk dicts as ``data:`` lines, then ``data: [DONE]`` unless ``done``
        is false (the stream then just ends: the connection closes)."""
        lines = [f"data: {json.dumps(c)}" for c in chunks]
        return cls(lines=[*lines, "data: [DONE]"] if done else lines)

    @classmethod
    def text(
        cls,
        *parts: str,
        usage: tuple[int, int] | None = (10, 5),
        finish_reason: str = "stop",
        finish_with_content: bool = False,
    ) -> Reply:
        """A text answer streamed as one delta per part, like OpenAI: a role chunk, the
        content, a finish chunk (or ``finish_with_content``: the finish reason on the last
        content chunk, as some servers do), the usage chunk, ``[DONE]``."""
        chunks = [chunk("", role="assistant")]
        chunks += [chunk(p) for p in parts]
        if finish_with_content and parts:
            chunks[-1] = chunk(parts[-1], finish_reason=finish_reason)
        else:
            chunks.append(chunk(finish_reason=finish_reason))
        if usage is not None:
            chunks.append(chunk(usage=usage, choices=False))
        return cls.stream(chunks)

    @classmethod
    def tool_calls(
        cls,
        *calls: FakeCall,
        text: str = "",
        split: int | None = 1,
        interleave: bool = False,
        ids: bool = True,
        finish_reason: str = "tool_calls",
        usage: tuple[int, int] | None = (10, 5),
    ) -> Reply:
        """Tool calls (after optional ``text``), streamed the way servers do.

        ``split=N``: OpenAI's way, a first chunk with id and name and ``arguments: ""``, then
        the arguments' JSON in N pieces. ``split=None``: the whole call in one chunk (Ollama,
        llama.cpp). ``interleave``: the pieces of parallel calls alternate instead of coming
        one call after another. ``ids=False``: no ``id`` anywhere (llama.cpp, older vLLM).
        """
        chunks = [chunk(text or "", role="assistant")]
        per_call: list[list[dict[str, Any]]] = []
        for index, call in enumerate(calls):
            raw = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
            head: dict[str, Any] = {"index": index, "type": "function"}
            if ids:
                head["id"] = call.id or f"call_fake_{index}"
            if split is None:
                per_call.append([{**head, "function": {"name": call.name, "arguments": raw}}])
                continue
            pieces = [{**head, "function": {"name": call.name, "arguments": ""}}]
            pieces += [{"index": index, "function": {"arguments": p}} for p in _split(raw, split)]
            per_call.append(pieces)
        if interleave:
            for round_ in range(max((len(p) for p in per_call), default=0)):
                chunks += [chunk(tool_calls=[p[round_]]) for p in per_call if round_ < len(p)]
        else:
            chunks += [chunk(tool_calls=[piece]) for pieces in per_call for piece in pieces]
        chunks.append(chunk(finish_reason=finish_reason))
        if usage is not None:
            chunks.append(chunk(usage=usage, choices=False))
        return cls.stream(chunks)

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
    ) -> Reply:
        """An HTTP error with OpenAI's body: ``{"error": {"message", "type", "code"}}``."""
        return cls(status=status, body={"error": {"message": message, "type": type, "code": code}})

    @classmethod
    def raw(cls, *lines: str) -> Reply:
        """These SSE lines exactly (no ``[DONE]`` added): for malformed streams."""
        return cls(lines=list(lines))

    @classmethod
    def never(cls) -> Reply:
        """Read the request, then never answer: for timeouts."""
        return cls(hang=True)

    @classmethod
    def from_json(cls, spec: Any) -> Reply:
        """A reply from a script entry (the JSON form of the class methods):

        - ``"hi"`` or ``{"text": "hi" | ["hi", " there"], "usage": [10, 5]}``
        - ``{"tool_calls": [{"name", "arguments", "id"?}], "text"?, "split"?, "interleave"?,
          "ids"?}`` (``arguments`` an object, or a string sent as is)
        - ``{"error": 401, "message": "…", "code"?: "…"}``
        - ``{"chunks": [chunk dicts], "done"?: true}`` or ``{"lines": ["data: …"]}``
        - ``{"hang": true}``
        """
        if isinstance(spec, str):
            return cls.text(spec)
        if not isinstance(spec, dict):
            raise ValueError(f"a reply spec must be a string or an object, not {spec!r}")
        extra: dict[str, Any] = {}
        if "usage" in spec:  # [prompt, completion], or null for no usage chunk
            extra["usage"] = (
                (int(spec["usage"][0]), int(spec["usage"][1])) if spec["usage"] else None
            )
        if "tool_calls" in spec:
            calls = [
                FakeCall(c["name"], c.get("arguments", {}), c.get("id")) for c in spec["tool_calls"]
            ]
            return cls.tool_calls(
                *calls,
                text=spec.get("text", ""),
                split=spec.get("split", 1),
                interleave=spec.get("interleave", False),
                ids=spec.get("ids", True),
                **extra,
            )
        if "text" in spec:
            parts = spec["text"] if isinstance(spec["text"], list) else [spec["text"]]
            return cls.text(*parts, **extra)
        if "error" in spec:
            return cls.error(
                int(spec["error"]), spec.get("message", "error"), code=spec.get("code")
            )
        if "chunks" in spec:
            return cls.stream(spec["chunks"], done=spec.get("done", True))
        if "lines" in spec:
            return cls.raw(*spec["lines"])
        if spec.get("hang"):
            return cls.never()
        raise ValueError(f"unknown reply spec {spec!r}")


def _split(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` consecutive pieces (fewer if it is shorter), none empty."""
    if not text:
        return []
    size = -(-len(text) // max(parts, 1))
    return [text[i : i + size] for i in range(0, len(text), size)]


#: Models that, like OpenAI's reasoning models, refuse ``max_tokens`` (a 400).
_REASONING = re.compile(r"^(?:o[1-9]|gpt-5)")


class FakeOpenAI:
    """The server. ``requests`` holds every chat request's JSON body in order, ``headers``
    its headers (names lower-case) at the same index. ``add`` queues more replies at any
    time (thread-safe)."""

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        port: int = 0,
        record_to: Path | None = None,
    ) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.record_to = record_to
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake server is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self._closing = asyncio.Event()  # of the loop that serves
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)

    async def stop(self) -> None:
        """Stop listening and end every open connection, hanging ones included."""
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[FakeOpenAI]:
        """Serve from an event loop in a daemon thread for the ``with`` block."""
        import threading

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-openai", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode("latin-1").split()
        if len(request_line) < 2:
            return
        method, path = request_line[0], request_line[1]
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length") or 0))
        if (method, path) != ("POST", CHAT_PATH):
            await _send(
                writer, Reply.error(404, f"fake_openai: no route {method} {path} (try {CHAT_PATH})")
            )
            return
        body: dict[str, Any] = json.loads(raw) if raw else {}
        self.requests.append(body)
        self.headers.append(headers)
        if self.record_to is not None:
            with self.record_to.open("a") as f:
                f.write(json.dumps({"path": path, "headers": headers, "body": body}) + "\n")
        problem = problems(body)
        if problem:
            await _send(writer, Reply.error(400, problem))
            return
        if "max_tokens" in body and _REASONING.search(str(body.get("model", ""))):
            reply = Reply.error(  # what api.openai.com answers, without using a scripted reply
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                type="invalid_request_error",
                code="unsupported_parameter",
            )
        elif not self.replies:
            reply = Reply.error(
                400, f"fake_openai: no scripted reply left for request #{len(self.requests)}"
            )
        else:
            reply = self.replies.popleft()
        await _send(writer, reply)
        if reply.hang:
            await self._closing.wait()


def problems(body: dict[str, Any]) -> str | None:
    """The first tool-call rule this chat request breaks (worded as the API does), or None:
    an assistant message's ``tool_calls`` are each answered by a ``tool`` message before the
    next other message, every ``tool`` message answers a call of that assistant message, and
    no call id is used twice in the conversation. The last is stricter than the API is known
    to be: results are paired with calls by id alone, so a repeated id is ambiguous, and
    OpenAI-compatible servers differ in what they do with one."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    waiting: list[str] = []
    seen: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            answered = message.get("tool_call_id")
            if answered not in waiting:
                return (
                    f"Invalid parameter: messages.[{i}]: messages with role 'tool' must be a "
                    "response to a preceeding message with 'tool_calls'."
                )
            waiting.remove(answered)
            continue
        if waiting:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(waiting)}"
            )
        for call in (message.get("tool_calls") or []) if role == "assistant" else []:
            call_id = call.get("id") if isinstance(call, dict) else None
            if not isinstance(call_id, str) or call_id in seen:
                return f"Invalid parameter: messages.[{i}]: duplicate tool_call id {call_id!r}"
            seen.add(call_id)
            waiting.append(call_id)
    return None


async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
    if reply.hang and not reply.lines:
        return
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
    status = f"HTTP/1.1 {reply.status} {reason.get(reply.status, 'Status')}\r\n"
    if reply.status != 200 or not reply.lines:
        payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        data = payload.encode()
        kind = "text/plain" if isinstance(reply.body, str) else "application/json"
        writer.write(
            f"{status}Content-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        return
    writer.write(
        f"{status}Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    for line in reply.lines:
        writer.write(f"{line}\n\n".encode())
        await writer.drain()  # one write per event, so the client sees a real stream


async def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--script", type=Path, required=True, help="JSON list of reply specs")
    parser.add_argument("--record", type=Path, help="append each request here as a JSON line")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args(argv)
    specs = json.loads(args.script.read_text())
    server = FakeOpenAI([Reply.from_json(s) for s in specs], port=args.port, record_to=args.record)
    await server.start()
    print(server.base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
