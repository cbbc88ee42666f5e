"""The Anthropic Messages API as a :class:`~deeting_tui.llm.model.Provider`.

The official SDK is imported on first use, never at module import: headless start-up stays
fast and the kernel never loads an LLM SDK (tests/test_import_hygiene.py). The SDK reads
``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` itself, so ``api_key`` and ``base_url`` are
only for callers that want to override them.

The stream is read as raw events and the turn is accumulated here rather than with the SDK's
``messages.stream()`` helper: the helper parses tool input with a partial-JSON parser and
raises mid-stream on malformed input, whereas we want a malformed call to reach the agent loop
as a :class:`ToolCall` with ``arguments_error`` (the model is told and can try again).
That accumulation, and the translation of messages and tools into the API's shapes, is
``anthropic_wire.py``; this module is the client. Every failure leaves
:meth:`AnthropicProvider.stream` as a :class:`ProviderError` with one actionable line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from deeting_tui.terminal_text import quote_prefix

from .anthropic_wire import ERROR_CHARS, StreamTurn, to_wire_messages, to_wire_tools
from .model import Event, Message, ProviderError, ToolChoice, ToolSpec

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from anthropic.types import ToolChoiceParam

__all__ = ["DEFAULT_MODEL", "AnthropicProvider"]

# The current Sonnet. (claude-sonnet-4-5 is deprecated by the SDK, end of life 2026-11-30.)
DEFAULT_MODEL = "claude-sonnet-5-5"


# An error event inside a 200 stream has no status of its own: its type says what it means.
_STATUS_OF_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider:
    """Streams one model response per :meth:`stream` call; see the module docstring."""

    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 4096,
        timeout: float = 120.0,
        max_retries: int = 0,
    ) -> None:
        # max_retries=0: the agent loop retries itself, and only before the first byte.
        self.model = model
        self.max_tokens = max_tokens
        self.timeout = timeout
        self._api_key = api_key
        self._base_url = base_url
        self._max_retries = max_retries
        self._client: AsyncAnthropic | None = None

    async def stream(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[Event]:
        """Yield text deltas and tool-call starts, then exactly one :class:`TurnDone`."""
        try:
            import anthropic
        except ImportError as exc:  # a dependency, so only a broken installation gets here
            raise ProviderError(
                f"the anthropic package cannot be imported ({exc}) — reinstall deeting",
                kind="bad_request",
            ) from exc
        turn = StreamTurn()
        try:
            client = await self._ensure_client()
            wire_tools = to_wire_tools(tools)
            choice: ToolChoiceParam = (
                {"type": "none"} if tool_choice == "none" else {"type": "auto"}
            )
            events = await client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system or anthropic.omit,
                messages=to_wire_messages(messages),
                tools=wire_tools or anthropic.omit,
                tool_choice=choice if wire_tools else anthropic.omit,
                stream=True,
            )
            async with events:
                async for event in events:
                    for out in turn.feed(event):
                        yield out
            done = turn.finish()
        except ProviderError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        # Yielded after the HTTP response is closed: a caller that stops at TurnDone leaves
        # nothing open behind it.
        yield done

    async def aclose(self) -> None:
        """Close the HTTP connections; the provider can still be used afterwards."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _ensure_client(self) -> AsyncAnthropic:
        if self._client is not None:
            return self._client
        from anthropic import AsyncAnthropic

        try:
            client = AsyncAnthropic(
                api_key=self._api_key,
                base_url=self._base_url,
                timeout=self.timeout,
                max_retries=self._max_retries,
            )
        except Exception as exc:  # e.g. a broken credentials profile on disk
            raise ProviderError(
                f"Anthropic credentials could not be loaded: {quote_prefix(str(exc), ERROR_CHARS)} "
                "— set ANTHROPIC_API_KEY",
                kind="auth",
            ) from exc
        if not _has_credentials(client):
            # Found now rather than by the SDK at request time, so the message can say what to do.
            await client.close()
            raise ProviderError(
                "no Anthropic API key — set ANTHROPIC_API_KEY (or choose another --provider)",
                kind="auth",
            )
        self._client = client
        return client

    def _where(self) -> str:
        if self._client is not None:
            return str(self._client.base_url).rstrip("/")
        return self._base_url or "the Anthropic API"

    def _error(self, exc: Exception) -> ProviderError:
        """One actionable line for any SDK, transport or parsing failure."""
        import anthropic
        import httpx2  # the SDK's transport; its errors can escape while a stream is read

        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
            return ProviderError(
                f"Anthropic did not answer within {self.timeout:g}s ({self._where()}) "
                "— try again later",
                kind="timeout",
                retryable=True,
            )
        if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
            reason = quote_prefix(str(exc.__cause__ or exc) or type(exc).__name__, ERROR_CHARS)
            return ProviderError(
                f"cannot reach Anthropic at {self._where()}: {reason} "
                "— check the network or ANTHROPIC_BASE_URL",
                kind="connection",
                retryable=True,
            )
        if isinstance(exc, anthropic.APIStatusError):
            return self._status_error(exc)
        return ProviderError(
            f"unexpected answer from Anthropic ({self._where()}): "
            f"{quote_prefix(str(exc) or type(exc).__name__, ERROR_CHARS)}",
            kind="protocol",
        )

    def _status_error(self, exc: Any) -> ProviderError:
        """``exc`` is an ``anthropic.APIStatusError`` (typed Any to keep the SDK lazy)."""
        status: int = exc.status_code
        error_type = exc.type if isinstance(exc.type, str) else None
        if status < 400:  # an `event: error` inside the stream
            status = _STATUS_OF_ERROR_TYPE.get(error_type or "", 500)
        detail = quote_prefix(
            exc.api_message if isinstance(exc.api_message, str) else str(exc), ERROR_CHARS
        )
        if status == 401:
            return ProviderError(
                f"Anthropic rejected the API key (401): {detail} — set ANTHROPIC_API_KEY",
                kind="auth",
            )
        if status == 403:
            return ProviderError(
                f"Anthropic refused the request (403): {detail} "
                "— check the key's permissions (ANTHROPIC_API_KEY)",
                kind="auth",
            )
        if status == 429:
            return ProviderError(
                f"Anthropic rate limit (429): {detail} — wait a moment and try again",
                kind="rate_limit",
                retryable=True,
            )
        if error_type == "timeout_error":
            return ProviderError(
                f"Anthropic timed out ({status}): {detail} — try again later",
                kind="timeout",
                retryable=True,
            )
        if status >= 500:
            what = "is overloaded" if status == 529 else "had a server error"
            return ProviderError(
                f"Anthropic {what} ({status}): {detail} — try again later",
                kind="server",
                retryable=True,
            )
        if status == 404:
            return ProviderError(
                f"Anthropic does not know model {self.model!r} (404): {detail} "
                "— choose another with --model",
                kind="bad_request",
            )
        return ProviderError(
            f"Anthropic rejected the request ({status}): {detail}", kind="bad_request"
        )


def _has_credentials(client: AsyncAnthropic) -> bool:
    """Whether the SDK found something to authenticate with (key, token, profile, header)."""
    if client.api_key or client.auth_token or client.credentials is not None:
        return True
    return any(name.lower() in ("authorization", "x-api-key") for name in client.default_headers)
