"""An OpenAI-compatible Chat Completions provider, streaming, over plain httpx.

One wire format serves OpenAI, Ollama, llama.cpp's server and vLLM, so this speaks it
directly instead of through the ``openai`` SDK: no extra dependency, and the local servers'
quirks (tool calls without ids, arguments in one piece, ``finish_reason`` on a content
chunk, no key at all) are handled in one place, ``openai_wire.py``. This module is the client:
the request, the connection and its failures, each of which becomes one
:class:`ProviderError` line that names the server and says what to do.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx

from deeting_tui.terminal_text import quote_prefix

from .model import Event, Message, ProviderError, ToolChoice, ToolSpec
from .openai_wire import (
    DETAIL_CHARS,
    StreamTurn,
    max_tokens_field,
    request_messages,
    server_message,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "OpenAIProvider"]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


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
        turn = StreamTurn(self.host)
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
        detail, code = server_message(response.content)
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
