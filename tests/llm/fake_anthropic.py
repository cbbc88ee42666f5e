"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 that streams like the real one.

It answers ``POST /v1/messages`` (``stream: true`` only) from a script of canned responses,
in order, and records every request. The wire format is the API's: ``event:``/``data:``
server-sent events ``message_start``, ``ping``, ``content_block_start`` / ``_delta`` (text in
several ``text_delta``s, tool input as ``input_json_delta``s that split the JSON anywhere) /
``_stop``, ``message_delta`` (stop reason, usage) and ``message_stop``, over chunked HTTP/1.1;
errors are the API's JSON body ``{"type": "error", "error": {"type": ..., "message": ...}}``.

In a test (the server runs in a thread; import it as ``llm.fake_anthropic``, tests/ is on
the path)::

    from llm.fake_anthropic import FakeAnthropic, HttpError, Reply, ToolUse

    with FakeAnthropic([Reply(tool_uses=[ToolUse("echo", {"text": "hi"})]), Reply("Done.")]) as api:
        provider = AnthropicProvider("claude-test", api_key="sk-test", base_url=api.base_url)
        ...  # or a subprocess with ANTHROPIC_BASE_URL=api.base_url, ANTHROPIC_API_KEY=sk-test
        assert api.requests[1].body["messages"][-1]["content"][0]["type"] == "tool_result"
        assert api.requests[0].api_key == "sk-test"

``start()``/``stop()`` do the same as the ``with`` block. Standalone, for a manual run::

    python tests/llm/fake_anthropic.py --reply "Hello!" [--script FILE.json] [--port N]

prints the base URL as its first line and serves until interrupted; FILE.json is a list in
the format of :func:`script_from_json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "ERROR_TYPES",
    "FakeAnthropic",
    "Hang",
    "HttpError",
    "RecordedRequest",
    "Reply",
    "Response",
    "ToolUse",
    "problems",
    "script_from_json",
    "sse_events",
]

# The API's error type for each status (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class ToolUse:
    """A tool call in a :class:`Reply`. ``input`` is a JSON object, or a str sent verbatim as
    the streamed JSON (to test malformed input); ``id`` defaults to ``toolu_fake_<req>_<n>``."""

    name: str
    input: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A streamed 200 answer: a text block (if ``text``), then one block per tool use.

    ``stop_reason`` defaults to ``tool_use`` when there are tool uses, else ``end_turn``.
    ``chunk`` is how many characters each text or JSON delta carries. With ``error`` =
    (type, message) the stream sends an ``event: error`` after the content instead of
    finishing (the API does this when it is overloaded mid-response). ``end_after`` = n stops
    the body after n events, without ``message_stop`` (a truncated stream); ``hang_after`` = n
    sends n events and then nothing until the server stops (a stalled stream).
    """

    text: str = ""
    tool_uses: Sequence[ToolUse] = ()
    stop_reason: str | None = None
    input_tokens: int = 12
    output_tokens: int = 7
    chunk: int = 5
    error: tuple[str, str] | None = None
    end_after: int | None = None
    hang_after: int | None = None


@dataclass(frozen=True)
class HttpError:
    """An HTTP error with the API's JSON error body; ``type`` defaults from the status."""

    status: int
    message: str = "fake error"
    type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        kind = self.type or ERROR_TYPES.get(self.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": self.message}}


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer (until the server stops): for client timeouts."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. ``headers`` has lower-case names."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def api_key(self) -> str | None:
        """The credential sent: ``x-api-key``, else the token of ``Authorization: Bearer``
        (the SDK 2.x sends the API key that way)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


Response = Reply | HttpError | Hang
ScriptItem = Response | Callable[[RecordedRequest], Response]


class FakeAnthropic:
    """The fake server; see the module docstring.

    ``script`` items are used in order, one per request: a :data:`Response`, or a function of
    the :class:`RecordedRequest` returning one. When the script is used up, ``default`` answers
    (if given), else a 400 saying so. ``api_key``, if given, is required like the real API
    does (401 otherwise). Invalid conversations get the API's 400 (see :func:`problems`).
    """

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        default: ScriptItem | None = None,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        self.script: list[ScriptItem] = list(script)
        self.default = default
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._lock = threading.Lock()
        self._release = threading.Event()  # lets Hang handlers go on stop()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        """Listen on 127.0.0.1 and serve in a daemon thread; ``port`` is known on return."""
        if self._server is not None:
            raise RuntimeError("already started")
        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hanging requests and close the listening socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self._release.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[FakeAnthropic]:
        """``with fake.running_in_thread() as server:``, the same as ``with fake:`` (named as
        in fake_openai, so end-to-end tests read alike)."""
        with self:
            yield self

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What to give the SDK (or ANTHROPIC_BASE_URL); it appends ``/v1/messages``."""
        return f"http://127.0.0.1:{self.port}"

    # -- script ----------------------------------------------------------------------------

    def add(self, *items: ScriptItem) -> None:
        """Append responses to the script."""
        with self._lock:
            self.script.extend(items)

    def _next(self, request: RecordedRequest) -> tuple[int, Response]:
        """Record ``request`` and take its response (a rejected request uses one up too)."""
        with self._lock:
            number = len(self.requests)
            self.requests.append(request)
            item = self.script.pop(0) if self.script else self.default
        if self.api_key is not None and request.api_key != self.api_key:
            return number, HttpError(401, "invalid x-api-key")
        if request.body.get("stream") is not True:
            return number, HttpError(400, "fake_anthropic only implements stream: true")
        problem = problems(request.body)
        if problem:
            return number, HttpError(400, problem)
        if item is None:
            message = f"fake_anthropic: no scripted response for request #{number}"
            return number, HttpError(400, message)
        return number, item(request) if callable(item) else item


def problems(body: dict[str, Any]) -> str | None:
    """The first rule of the API that this request breaks (as the API words it), or None:
    alternating roles starting with ``user``, no empty content, every ``tool_use`` answered
    by a ``tool_result`` at the start of the next user message, and each ``tool_use`` id
    unique in the conversation and made of ``[a-zA-Z0-9_-]``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    expected_results: list[str] = []
    seen_ids: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role != ("user" if i % 2 == 0 else "assistant"):
            return (
                f"messages.{i}: roles must alternate between user and assistant, starting with user"
            )
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks or any(b.get("type") == "text" and not b.get("text") for b in blocks):
            return f"messages.{i}: all messages must have non-empty content"
        results = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
        if results and any(b.get("type") != "tool_result" for b in blocks[: len(results)]):
            return f"messages.{i}: tool_result blocks must come first in the user message"
        if expected_results and sorted(results) != sorted(expected_results):
            return (
                f"messages.{i}: tool_use ids were found without tool_result blocks immediately "
                f"after: {', '.join(sorted(set(expected_results) - set(results)))}"
            )
        expected_results = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        for j, block in enumerate(blocks):
            if block.get("type") != "tool_use":
                continue
            if not re.fullmatch(r"[a-zA-Z0-9_-]+", str(block.get("id"))):
                return (
                    f"messages.{i}.content.{j}.tool_use.id: String should match pattern "
                    "'^[a-zA-Z0-9_-]+$'"
                )
            if block["id"] in seen_ids:
                return f"messages.{i}.content.{j}: `tool_use` ids must be unique"
            seen_ids.add(block["id"])
    return None


def sse_events(
    reply: Reply, *, model: str, request_number: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs the API streams for ``reply``."""
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": f"msg_fake_{request_number}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
            },
        },
    )
    yield "ping", {"type": "ping"}
    index = 0
    if reply.text:
        yield "content_block_start", _block_start(index, {"type": "text", "text": ""})
        for piece in _pieces(reply.text, reply.chunk):
            yield "content_block_delta", _delta(index, {"type": "text_delta", "text": piece})
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
        index += 1
    for n, use in enumerate(reply.tool_uses):
        tool_id = use.id or f"toolu_fake_{request_number}_{n}"
        start = {"type": "tool_use", "id": tool_id, "name": use.name, "input": {}}
        yield "content_block_start", _block_start(index, start)
        raw = use.input if isinstance(use.input, str) else json.dumps(use.input)
        for piece in ["", *_pieces(raw, reply.chunk)]:  # the API opens with an empty delta
            yield (
                "content_block_delta",
                _delta(index, {"type": "input_json_delta", "partial_json": piece}),
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
        index += 1
    if reply.error is not None:
        kind, message = reply.error
        yield "error", {"type": "error", "error": {"type": kind, "message": message}}
        return
    stop_reason = reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn")
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _handler_for(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like the API
        timeout = 60  # an idle keep-alive connection is dropped after this

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read fake.requests instead

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
            if not isinstance(body, dict):
                body = {"_unparsed": body}
            request = RecordedRequest(
                "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            if self.path.split("?")[0] != "/v1/messages":
                with fake._lock:
                    fake.requests.append(request)
                self._send_error(HttpError(404, f"fake_anthropic: no route {self.path}"))
                return
            number, response = fake._next(request)
            if isinstance(response, Hang):
                fake._release.wait()
                self.close_connection = True
            elif isinstance(response, HttpError):
                self._send_error(response)
            else:
                self._send_stream(response, str(body.get("model", "")), number)

        def _send_error(self, error: HttpError) -> None:
            data = json.dumps(error.body()).encode()
            self.send_response(error.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", "req_fake")
            for name, value in error.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, reply: Reply, model: str, number: int) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream; charset=utf-8")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("request-id", f"req_fake_{number}")
            self.end_headers()
            try:
                for sent, (name, data) in enumerate(
                    sse_events(reply, model=model, request_number=number)
                ):
                    if sent == reply.hang_after:
                        fake._release.wait()
                        self.close_connection = True
                        return
                    if sent == reply.end_after:
                        break
                    text = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(text), text))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up; nothing to tell it

    return Handler


def script_from_json(items: Sequence[dict[str, Any]]) -> list[Response]:
    """Responses from plain JSON (for the standalone server or a script file):
    ``{"text": "...", "tool_uses": [{"name": "...", "input": {...}, "id": "..."}],
    "stop_reason": "...", "error": ["overloaded_error", "msg"]}`` is a :class:`Reply`,
    ``{"status": 401, "message": "...", "type": "..."}`` an :class:`HttpError`,
    ``{"hang": true}`` a :class:`Hang`."""
    responses: list[Response] = []
    for item in items:
        if item.get("hang"):
            responses.append(Hang())
        elif "status" in item:
            responses.append(
                HttpError(int(item["status"]), item.get("message", "fake error"), item.get("type"))
            )
        else:
            uses = [
                ToolUse(u["name"], u.get("input", {}), u.get("id"))
                for u in item.get("tool_uses", [])
            ]
            error = item.get("error")
            responses.append(
                Reply(
                    item.get("text", ""),
                    uses,
                    item.get("stop_reason"),
                    error=(str(error[0]), str(error[1])) if error else None,
                )
            )
    return responses


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Anthropic Messages API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    parser.add_argument("--script", metavar="FILE", help="JSON list of responses, in order")
    parser.add_argument("--reply", metavar="TEXT", help="answer TEXT once the script is used up")
    parser.add_argument("--api-key", metavar="KEY", help="require this key (401 otherwise)")
    args = parser.parse_args(argv)
    script: list[Response] = []
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            script = script_from_json(json.load(f))
    fake = FakeAnthropic(
        script,
        default=Reply(args.reply) if args.reply else None,
        api_key=args.api_key,
        port=args.port,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    with fake:
        print(fake.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
