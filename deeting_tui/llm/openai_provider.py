"""An OpenAI-compatible Chat Completions provider, streaming, over plain httpx.

One wire format serves OpenAI, Ollama, llama.cpp's server and vLLM, so this speaks it
directly instead of through the ``openai`` SDK: no extra dependency, and the local servers'
quirks (tool calls without ids, arguments in one piece, ``finish_reason`` on a content
chunk, no key at all) are handled here in one place. Every failure becomes one
:class:`ProviderError` line that names the server and says what to do.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from deeting_tui.terminal_text import quote_prefix

from .model import (
    Event,
    Message,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolChoice,
    ToolSpec,
    TurnDone,
    Usage,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "OpenAIProvider", "request_messages"]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DETAIL_CHARS = 200  # of the server's own error message, so the line stays one line

STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


class OpenAIProvider:
    """A :class:`~deeting_tui.llm.model.Provider` for ``POST {base_url}/chat/completions``.

    ``timeout`` bounds each wait for the server (the first token included), not the whole
    answer, so a long reply from a slow local model is not cut off while it keeps streaming.
    The httpx client is made on first use, in the event loop that streams; ``aclose`` ends it.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_tokens: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        # Local servers need no key: without one no Authorization header is sent at all.
        self.api_key = (api_key or os.environ.get("OPENAI_API_KEY") or "").strip() or None
        base = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base.strip().rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.max_tokens = max_tokens
        self.timeout = timeout
        self._timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        try:
            self.host = httpx.URL(self.base_url).netloc.decode("ascii") or self.base_url
        except (httpx.InvalidURL, UnicodeDecodeError):
            self.host = self.base_url

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def request_body(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: ToolChoice = "auto",
    ) -> dict[str, Any]:
        """The JSON sent for one turn (public so tests and debugging can see it)."""
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": request_messages(system, messages),
        }
        if tools:  # some servers reject an empty tools list, or tool_choice without tools
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in tools
            ]
            body["tool_choice"] = tool_choice
        if self.max_tokens is not None:
            body[max_tokens_field(self.model)] = self.max_tokens
        return body

    async def stream(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[Event]:
        body = self.request_body(
            system=system, messages=messages, tools=tools, tool_choice=tool_choice
        )
        turn = _Turn(self.host)
        try:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            async with self._http().stream("POST", self.url, json=body, headers=headers) as r:
                if not r.is_success:
                    await r.aread()  # the error body says why; the status alone rarely does
                    raise self._status_error(r)
                async for line in r.aiter_lines():
                    for event in turn.feed(line):
                        yield event
                    if turn.finished:
                        break
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except httpx.ConnectError as exc:
            raise self._connect_error(exc) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            detail = quote_prefix(str(exc), DETAIL_CHARS)
            raise ProviderError(
                f"bad base URL {self.base_url!r}: {detail} — it should look like "
                "http://host:port/v1 (OPENAI_BASE_URL)",
                kind="bad_request",
            ) from exc
        except httpx.HTTPError as exc:  # read/write errors, a dropped connection, bad framing
            detail = quote_prefix(str(exc), DETAIL_CHARS) or type(exc).__name__
            raise ProviderError(
                f"the connection to {self.host} broke: {detail}",
                kind="connection",
                retryable=True,
            ) from exc
        except UnicodeEncodeError as exc:  # a key httpx cannot put in a header
            raise ProviderError(
                "the API key contains characters that cannot be sent — check OPENAI_API_KEY",
                kind="auth",
            ) from exc
        # Yielded after the response is closed: a caller that stops at TurnDone leaks nothing.
        yield turn.done()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeouts, transport=self._transport)
        return self._client

    def _status_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        detail, code = _server_message(response.content)
        said = f": {detail}" if detail else ""
        where = f"{self.host} ({status}){said}"
        if status in (401, 403):
            verb = "rejected the API key" if self.api_key else "needs an API key"
            return ProviderError(
                f"{self.host} {verb} ({status}){said} — set OPENAI_API_KEY", kind="auth"
            )
        if status == 429:
            if code == "insufficient_quota":  # retrying cannot help until someone pays
                return ProviderError(
                    f"quota exhausted at {where} — check the account's billing", kind="rate_limit"
                )
            return ProviderError(
                f"rate limited by {where} — wait and try again", kind="rate_limit", retryable=True
            )
        if status >= 500:
            return ProviderError(f"server error from {where}", kind="server", retryable=True)
        if status == 404:
            return ProviderError(
                f"not found at {where} — check the model name {self.model!r} and the base URL "
                f"{self.base_url} (OPENAI_BASE_URL)",
                kind="bad_request",
            )
        if 300 <= status < 400:
            target = response.headers.get("location", "elsewhere")
            return ProviderError(
                f"{self.host} redirects ({status}) to {target} — set OPENAI_BASE_URL to it",
                kind="bad_request",
            )
        return ProviderError(f"request refused by {where}", kind="bad_request")

    def _connect_error(self, exc: httpx.ConnectError) -> ProviderError:
        reason = quote_prefix(str(exc), DETAIL_CHARS) or "connection failed"
        cause: BaseException | None = exc
        while cause is not None:  # httpx says "All connection attempts failed"; the OS says why
            if isinstance(cause, ConnectionRefusedError):
                reason = "connection refused"
            elif isinstance(cause, socket.gaierror):
                reason = "host not found"
            cause = cause.__cause__ or cause.__context__
        hint = (
            "is the server running? (OPENAI_BASE_URL)"
            if self.base_url != DEFAULT_BASE_URL
            else "check the network"
        )
        return ProviderError(
            f"cannot connect to {self.base_url}: {reason} — {hint}",
            kind="connection",
            retryable=True,
        )

    def _timeout_error(self, exc: httpx.TimeoutException) -> ProviderError:
        if isinstance(exc, httpx.ConnectTimeout):
            message = f"timed out connecting to {self.base_url} — is the host reachable?"
        else:
            message = (
                f"{self.host} did not answer within {self.timeout:g} s (timeout) — "
                "a slow or busy model may need a longer timeout"
            )
        return ProviderError(message, kind="timeout", retryable=True)


#: OpenAI's reasoning models (o1, o3, o4-mini, the gpt-5 family, also behind a router's
#: ``openai/`` prefix) refuse ``max_tokens`` with a 400 and take ``max_completion_tokens``.
_REASONING_MODEL = re.compile(r"(?:^|/)(?:o[1-9][0-9]*|gpt-5)(?:[-.:_]|$)", re.IGNORECASE)


def max_tokens_field(model: str) -> str:
    """The body's name for the output cap: other servers (Ollama, llama.cpp, vLLM, older
    OpenAI models) keep the widely understood ``max_tokens``."""
    return "max_completion_tokens" if _REASONING_MODEL.search(model.strip()) else "max_tokens"


def request_messages(system: str, messages: list[Message]) -> list[dict[str, Any]]:
    """The neutral conversation in Chat Completions shapes: the system prompt first, tool
    results as one ``tool`` message each (errors marked, since the API has no error flag),
    assistant tool calls with their arguments as a JSON string."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        if m.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in m.tool_calls
                ]
            elif not m.text:
                entry["content"] = ""  # null content is only valid beside tool_calls
            out.append(entry)
            continue
        for r in m.tool_results:  # Chat Completions wants one "tool" message per result
            content = r.content
            if r.is_error and not content.lower().startswith("error"):
                content = f"error: {content}"
            out.append({"role": "tool", "tool_call_id": r.call_id, "content": content})
        if m.text or not m.tool_results:
            out.append({"role": "user", "content": m.text})
    return out


@dataclass
class _PendingCall:
    index: int
    id: str | None = None
    name: str = ""
    arguments: str = ""
    announced: bool = False

    def final_id(self) -> str:
        # llama.cpp and older vLLM may omit ids; the model needs one to match results back.
        return self.id or f"call_{self.index}"


class _Turn:
    """Assembles one streamed response from its SSE lines; raises ProviderError("protocol")."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.text: list[str] = []
        self.calls: dict[int, _PendingCall] = {}
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.finished = False  # saw [DONE]
        self.data_lines = 0

    def feed(self, line: str) -> Iterator[Event]:
        # Every OpenAI-compatible server puts one JSON chunk on one ``data:`` line, so lines
        # are parsed alone; comments (": keep-alive"), ``event:`` and blank lines are skipped.
        if not line.startswith("data:"):
            return
        data = line[5:].strip()
        self.data_lines += 1
        if data == "[DONE]":
            self.finished = True
            return
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise self._malformed(f"a data line is not JSON: {data[:60]!r}") from None
        if not isinstance(chunk, dict):
            raise self._malformed(f"a data line is not a JSON object: {data[:60]!r}")
        if chunk.get("error") is not None or chunk.get("object") == "error":
            # OpenAI and vLLM report a failure after the 200 as a chunk of its own.
            detail, _ = _message_of(chunk)
            raise ProviderError(
                f"{self.host} failed mid-answer: {detail or 'no reason given'}",
                kind="server",
                retryable=True,
            )
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            if isinstance(usage, dict):
                return  # a usage-only chunk from a server that leaves out the empty choices
            raise self._malformed("a chunk has no choices")
        if not choices:
            return  # the usage chunk that ends an include_usage stream
        choice = choices[0]
        if not isinstance(choice, dict):
            raise self._malformed("a choice is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise self._malformed("a delta is not an object")
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.text.append(content)
            yield TextDelta(content)
        tool_calls = delta.get("tool_calls") or []
        if not isinstance(tool_calls, list):
            raise self._malformed("tool_calls is not a list")
        for position, piece in enumerate(tool_calls):
            started = self._add_call_piece(position, piece)
            if started is not None:
                yield started
        # Taken from whichever chunk carries it: some servers put it beside content.
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])

    def _add_call_piece(self, position: int, piece: Any) -> ToolCallStarted | None:
        if not isinstance(piece, dict):
            raise self._malformed("a tool call is not an object")
        function = piece.get("function") or {}
        if not isinstance(function, dict):
            raise self._malformed("a tool call's function is not an object")
        call_id = piece.get("id") if isinstance(piece.get("id"), str) and piece["id"] else None
        index = piece.get("index")
        if not isinstance(index, int):  # some Ollama versions send no index: match by id
            same = [c for c in self.calls.values() if call_id and c.id == call_id]
            index = same[0].index if same else (len(self.calls) if call_id else position)
        call = self.calls.setdefault(index, _PendingCall(index))
        if call_id and call.id is None and not call.announced:
            call.id = call_id
        name = function.get("name")
        if isinstance(name, str) and name and not call.name:
            call.name = name  # some servers repeat the name on every chunk: keep the first
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments += arguments
        elif isinstance(arguments, dict):  # a server that sends the object, not its JSON
            call.arguments += json.dumps(arguments)
        if call.name and not call.announced:
            call.announced = True
            return ToolCallStarted(call.final_id(), call.name)
        return None

    def done(self) -> TurnDone:
        if not self.finished and self.finish_reason is None:
            if self.data_lines == 0:
                raise self._malformed(
                    "no `data:` events, the answer was not streamed — is the base URL an "
                    "OpenAI-compatible /v1?"
                )
            raise self._malformed("the stream ended before the answer was complete")
        calls = tuple(_parse_call(c) for _, c in sorted(self.calls.items()))
        stop = STOP_REASONS.get(self.finish_reason or "", "other")
        if calls and stop in ("end_turn", "other"):  # llama.cpp may say "stop" after tools
            stop = "tool_use"
        return TurnDone("".join(self.text), calls, stop, self.usage)

    def _malformed(self, what: str) -> ProviderError:
        return ProviderError(f"malformed stream from {self.host}: {what}", kind="protocol")


def _parse_call(call: _PendingCall) -> ToolCall:
    """Arguments that are not a JSON object become an error the model is told about."""
    if not call.name:
        return ToolCall(call.final_id(), "", {}, "the tool call has no name")
    raw = call.arguments.strip()
    if not raw:
        return ToolCall(call.final_id(), call.name, {})
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON ({exc.msg} at position {exc.pos})"
        return ToolCall(call.final_id(), call.name, {}, reason)
    except RecursionError:
        return ToolCall(call.final_id(), call.name, {}, "JSON nested too deeply")
    if not isinstance(value, dict):
        return ToolCall(
            call.final_id(), call.name, {}, f"a JSON {type(value).__name__}, not an object"
        )
    return ToolCall(call.final_id(), call.name, value)


def _server_message(body: bytes) -> tuple[str, str | None]:
    """The server's own words on one line, and OpenAI's error code if it gave one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return quote_prefix(body.decode("utf-8", "replace"), DETAIL_CHARS), None
    return _message_of(data)


def _message_of(data: Any) -> tuple[str, str | None]:
    """OpenAI's ``{"error": {"message", "code"}}``, Ollama's ``{"error": "…"}``, vLLM's
    ``{"object": "error", "message"}``, FastAPI's ``{"detail"}``, else the JSON itself."""
    message: Any = data
    code: str | None = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error
            code = error.get("code") if isinstance(error.get("code"), str) else None
        elif error is not None:
            message = error
        elif "message" in data:
            message = data["message"]
        elif "detail" in data:
            message = data["detail"]
    text = message if isinstance(message, str) else json.dumps(message)
    return quote_prefix(text, DETAIL_CHARS), code


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
