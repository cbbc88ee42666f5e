"""The reading side of a Peer: frames in, dispatched as requests, notifications or
responses, and the replies to requests.

A mixin of :class:`~deeting_tui.rpc.peer.Peer` (its state is the peer's).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from .errors import (
    CANCELLED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MESSAGE_TOO_LARGE,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)
from .framing import LineBuffer, Oversized
from .protocol import CANCEL

log = logging.getLogger("deeting.rpc")

CANCEL_METHOD = CANCEL
RequestId = int | str
RequestHandler = Callable[[str, Any, RequestId], Any]
NotificationHandler = Callable[[str, Any], None]


class Incoming:
    # The Peer's state (peer.py sets it in __init__).
    _read_fd: int
    _request_handler: RequestHandler | None
    _notification_handler: NotificationHandler | None
    _on_protocol_error: Callable[[str], None] | None
    _buffer: LineBuffer
    _read_buffer: bytearray
    _read_view: memoryview
    _request_id_var: contextvars.ContextVar[Any] | None
    _pending: dict[int, asyncio.Future[Any]]
    _cancelled: set[int]
    _tasks: dict[RequestId, asyncio.Task[Any]]
    _loop: asyncio.AbstractEventLoop | None
    closed: bool
    on_response: Callable[[int], None] | None

    if TYPE_CHECKING:

        def _send(self, data: bytes) -> None: ...

        def _connection_lost(self) -> None: ...

        def _shutdown(self, error: RpcError, *, notify: bool) -> None: ...

    # -- reading --------------------------------------------------------------------------

    def _on_readable(self) -> None:
        # Into a buffer kept for the peer's lifetime: os.read(fd, 256 KiB) allocates that much
        # per call, which glibc serves with mmap + mremap + munmap and fresh zeroed pages —
        # more system time than the read itself, twice per round trip.
        try:
            size = os.readv(self._read_fd, [self._read_buffer])
        except BlockingIOError:
            return
        except OSError:
            size = 0
        if not size:
            self._connection_lost()
            return
        data = bytes(self._read_view[:size])
        for frame in self._buffer.feed(data):
            if self.closed:
                return
            if isinstance(frame, Oversized):
                limit = self._buffer.max_bytes
                self._protocol_error(
                    f"message of {frame.size} bytes is over the {limit}-byte limit"
                )
                self._reply_error(None, MESSAGE_TOO_LARGE, f"message over {limit} bytes dropped")
            else:
                self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self._protocol_error(f"not JSON: {exc}")
            self._reply_error(None, PARSE_ERROR, "parse error: not valid JSON")
            return
        if not isinstance(message, dict):
            kind = "batches are not supported" if isinstance(message, list) else "not an object"
            self._protocol_error(f"invalid message: {kind}")
            self._reply_error(None, INVALID_REQUEST, f"invalid request: {kind}")
            return
        request_id = message.get("id")
        if message.get("jsonrpc") != "2.0":
            self._invalid(message, "'jsonrpc' must be \"2.0\"")
            return
        method = message.get("method")
        if method is not None:
            params = message.get("params")
            if not isinstance(method, str):
                self._invalid(message, "'method' must be a string")
            elif params is not None and not isinstance(params, (dict, list)):
                self._invalid(message, "'params' must be an object or an array")
            elif "id" not in message:
                self._on_notification(method, params)
            elif isinstance(request_id, bool) or not isinstance(request_id, (int, str)):
                self._invalid(message, "'id' must be a string or an integer")
            else:
                self._on_request(method, params, request_id)
            return
        if "result" in message or "error" in message:
            self._on_response(message)
            return
        self._invalid(message, "neither a request nor a response")

    def _invalid(self, message: dict[str, Any], why: str) -> None:
        request_id = message.get("id")
        valid_id = isinstance(request_id, (int, str)) and not isinstance(request_id, bool)
        self._protocol_error(f"invalid message: {why}")
        self._reply_error(
            request_id if valid_id else None, INVALID_REQUEST, f"invalid request: {why}"
        )

    def _on_response(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        # Our ids are ints; a bool is an int to Python (True == 1) but not to JSON.
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            self._protocol_error(f"response to unknown request id {request_id!r}")
            return
        future = self._pending.pop(request_id, None)
        if future is None:
            if request_id in self._cancelled:
                # The one late answer to a request cancel() failed here: expected, not an error.
                self._cancelled.discard(request_id)
                if self.on_response is not None:
                    self.on_response(request_id)
                return
            self._protocol_error(f"response to unknown request id {request_id!r}")
            return
        if self.on_response is not None:
            self.on_response(request_id)
        if future.done():
            return
        if "error" in message:
            future.set_exception(RpcError.from_json(message["error"]))
        else:
            future.set_result(message.get("result"))

    def _on_notification(self, method: str, params: Any) -> None:
        if method == CANCEL_METHOD:
            target = params.get("id") if isinstance(params, dict) else None
            task = self._tasks.get(target) if isinstance(target, (int, str)) else None
            if task is not None:
                task.cancel()
            return
        if self._notification_handler is None:
            return
        try:
            self._notification_handler(method, params)
        except Exception:
            log.exception("notification handler for %r failed", method)

    def _on_request(self, method: str, params: Any, request_id: RequestId) -> None:
        if self._request_handler is None:
            self._reply_error(request_id, METHOD_NOT_FOUND, f"method not found: {method}")
            return
        token = self._request_id_var.set(request_id) if self._request_id_var else None
        try:
            outcome = self._request_handler(method, params, request_id)
        except RpcError as exc:
            self._reply_error(request_id, exc.code, exc.message, exc.data)
            return
        except Exception as exc:
            log.exception("request handler for %r failed", method)
            self._reply_error(request_id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            return
        finally:
            if token is not None and self._request_id_var is not None:
                self._request_id_var.reset(token)
        if is_awaitable(outcome):
            # The task runs in a context where the request id is set, so the plugin's
            # async code can report progress on the right call.
            ctx = contextvars.copy_context()
            if self._request_id_var is not None:
                ctx.run(self._request_id_var.set, request_id)
            assert self._loop is not None
            task = self._loop.create_task(_await(outcome), context=ctx)
            self._tasks[request_id] = task
            task.add_done_callback(functools.partial(self._on_task_done, request_id))
        else:
            self._reply_result(request_id, outcome)

    def _on_task_done(self, request_id: RequestId, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(request_id) is task:  # a reused id may belong to a newer task
            del self._tasks[request_id]
        if task.cancelled():
            self._reply_error(request_id, CANCELLED, "cancelled")
            return
        exc = task.exception()
        if exc is None:
            self._reply_result(request_id, task.result())
        elif isinstance(exc, RpcError):
            self._reply_error(request_id, exc.code, exc.message, exc.data)
        else:
            self._reply_error(request_id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

    # -- replies --------------------------------------------------------------------------

    def _reply_result(self, request_id: RequestId, result: Any) -> None:
        try:
            data = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + b"\n"
        except TypeError as exc:
            self._reply_error(request_id, INTERNAL_ERROR, f"result is not JSON-serialisable: {exc}")
            return
        self._send(data)

    def _reply_error(
        self, request_id: RequestId | None, code: int, message: str, data: Any = None
    ) -> None:
        error = RpcError(code, message, data).to_json()
        try:
            frame = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})
        except TypeError:
            error.pop("data", None)
            frame = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})
        self._send(frame + b"\n")

    def _protocol_error(self, message: str) -> None:
        if self._on_protocol_error is not None:
            self._on_protocol_error(message)
        else:
            log.warning("rpc: %s", message)


async def _await(awaitable: Any) -> Any:
    return await awaitable


# What handlers return on the hot path; inspect.isawaitable's ABC check costs microseconds.
_PLAIN_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def is_awaitable(value: Any) -> bool:
    """inspect.isawaitable, with a shortcut for plain JSON values."""
    return type(value) not in _PLAIN_TYPES and inspect.isawaitable(value)
