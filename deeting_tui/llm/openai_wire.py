"""The Chat Completions wire, both ways: the conversation in its shapes, its stream back as events.

Kept apart from the HTTP client (``openai_provider.py``) because this is where the servers
differ: OpenAI, Ollama, llama.cpp and vLLM each bend the format a little (tool calls without
ids or indexes, arguments in one piece or as an object, ``finish_reason`` beside content,
errors as a chunk after the 200). Every quirk is absorbed here, on plain data, so it can be
tested line by line without a server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from deeting_tui.terminal_text import quote_prefix

from .model import (
    Event,
    Message,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    TurnDone,
    Usage,
)

__all__ = ["DETAIL_CHARS", "StreamTurn", "max_tokens_field", "request_messages", "server_message"]

DETAIL_CHARS = 200  # of the server's own error message, so the line stays one line


STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


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


class StreamTurn:
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


def server_message(body: bytes) -> tuple[str, str | None]:
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
