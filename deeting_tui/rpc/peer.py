"""A JSON-RPC 2.0 endpoint over a pair of pipe file descriptors, for asyncio.

Both sides of a plugin connection use it. The kernel side writes without ever blocking (a
stuck worker must not freeze the chat), buffering up to a limit; the worker side may write
blocking from any thread, because plugin threads may push streams. Malformed input is
answered with a JSON-RPC error where there is an id to answer, and always reported through
``on_protocol_error`` so the owner can decide whether the peer is still trustworthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from .errors import (
    CANCELLED,
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MESSAGE_TOO_LARGE,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)
from .framing import DEFAULT_MAX_MESSAGE_BYTES, LineBuffer, Oversized
from .protocol import CANCEL, CancelParams

CANCEL_METHOD = CANCEL
READ_CHUNK = 256 * 1024
MAX_WRITE_BUFFER = 64 * 1024 * 1024

RequestId = int | str
RequestHandler = Callable[[str, Any, RequestId], Any]
NotificationHandler = Callable[[str, Any], None]

log = logging.getLogger("deeting.rpc")


class Peer:
    """One end of an NDJSON JSON-RPC connection."""

    def __init__(
        self,
        read_fd: int,
        write_fd: int,
        *,
        request_handler: RequestHandler | None = None,
        notification_handler: NotificationHandler | None = None,
        on_close: Callable[[], None] | None = None,
        on_protocol_error: Callable[[str], None] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        blocking_writes: bool = False,
        request_id_var: contextvars.ContextVar[Any] | None = None,
    ) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._request_handler = request_handler
        self._notification_handler = notification_handler
        self._on_close = on_close
        self._on_protocol_error = on_protocol_error
        self._buffer = LineBuffer(max_message_bytes)
        self._read_buffer = bytearray(READ_CHUNK)
        self._read_view = memoryview(self._read_buffer)
        self._blocking_writes = blocking_writes
        self._request_id_var = request_id_var
        self._write_lock = threading.Lock()
        # Unsent output. Partly written chunks are kept as memoryviews: slicing bytes would copy
        # the rest of a large frame on every partial write (quadratic in the frame size).
        self._wbuf: deque[bytes | memoryview] = deque()
        self._wbuf_size = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # Requests cancelled here whose (one, late) response is still to come: it is dropped
        # quietly instead of being reported as a response to an unknown id.
        self._cancelled: set[int] = set()
        self._tasks: dict[RequestId, asyncio.Task[Any]] = {}
        self._next_id = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading_in_loop = False
        self.closed = False
        #: Called with the id of every response that arrives, even one whose future was
        #: already failed locally; a supervisor uses it to see a cancelled call wind down.
        self.on_response: Callable[[int], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(
        self, loop: asyncio.AbstractEventLoop | None = None, *, read_in_loop: bool = True
    ) -> None:
        """Begin serving. Without ``loop``, call from inside the running loop.

        ``read_in_loop=False`` leaves reading to :meth:`read_blocking` until
        :meth:`set_read_in_loop` says otherwise: a worker whose loop has nothing to do waits in
        a plain blocking read, which wakes faster than an event loop's poll.
        """
        self._loop = loop or asyncio.get_running_loop()
        if not self._blocking_writes:
            os.set_blocking(self._write_fd, False)
        elif self._write_fd != self._read_fd:
            # An inherited fd may be non-blocking; a blocking writer would then take EAGAIN
            # for a lost connection.
            os.set_blocking(self._write_fd, True)
        self._reading_in_loop = not read_in_loop  # so the call below sets the fd up either way
        self.set_read_in_loop(read_in_loop)

    def set_read_in_loop(self, enabled: bool) -> None:
        """Read through the event loop (non-blocking fd) or through :meth:`read_blocking`."""
        assert self._loop is not None, "Peer.start() was not called"
        if self.closed or enabled == self._reading_in_loop:
            return
        if enabled:
            os.set_blocking(self._read_fd, False)
            self._loop.add_reader(self._read_fd, self._on_readable)
        else:
            if self._read_fd == self._write_fd and not self._blocking_writes:
                raise ValueError("blocking reads on the fd that also takes non-blocking writes")
            self._loop.remove_reader(self._read_fd)
            os.set_blocking(self._read_fd, True)
        self._reading_in_loop = enabled

    def read_blocking(self) -> None:
        """Wait for input outside the event loop and dispatch all of it (or see the close)."""
        if self._reading_in_loop:
            raise RuntimeError("the event loop is reading this peer; set_read_in_loop(False)")
        if not self.closed:
            self._on_readable()

    def close(self) -> None:
        """Stop, fail every pending request, close both fds."""
        self._shutdown(RpcError(CONNECTION_CLOSED, "connection closed"), notify=False)

    # -- outgoing -------------------------------------------------------------------------

    def request_future(self, method: str, params: Any = None) -> tuple[int, asyncio.Future[Any]]:
        """Send a request; return its id and a future for the result (raises RpcError)."""
        assert self._loop is not None, "Peer.start() was not called"
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = self._loop.create_future()
        if self.closed:
            future.set_exception(RpcError(CONNECTION_CLOSED, "connection closed"))
            return request_id, future
        self._pending[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            self._send(orjson.dumps(message) + b"\n")
        except TypeError as exc:
            del self._pending[request_id]
            raise RpcError(INTERNAL_ERROR, f"request params are not JSON: {exc}") from None
        return request_id, future

    async def request(self, method: str, params: Any = None) -> Any:
        return await self.request_future(method, params)[1]

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(orjson.dumps(message) + b"\n")

    def cancel(self, request_id: int, reason: str = "cancelled") -> None:
        """Tell the other side to stop working on a request, and fail it here now."""
        future = self._pending.pop(request_id, None)
        if future is None:
            return  # already answered (or unknown): nothing to cancel, no response to expect
        if not future.done():
            future.set_exception(RpcError(CANCELLED, reason))
        if not self.closed:
            self._cancelled.add(request_id)
            self.notify(CANCEL_METHOD, CancelParams(request_id).to_json())

    def is_pending(self, request_id: int) -> bool:
        """True while no response to ``request_id`` has arrived (even if its future was
        already failed locally, e.g. by a deadline)."""
        return request_id in self._pending

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def requests_sent(self) -> int:
        """How many requests this peer has sent; a kernel watchdog tells a worker that works
        for its callers from one that is busy on its own by whether this moved."""
        return self._next_id - 1

    # -- writing --------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        if self._blocking_writes:
            with self._write_lock:
                view = memoryview(data)
                try:
                    while view:
                        view = view[os.write(self._write_fd, view) :]
                except OSError:
                    self._schedule_lost()
            return
        if self._wbuf:
            self._queue(data)
            return
        try:
            written = os.write(self._write_fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            self._schedule_lost()
            return
        if written < len(data):
            self._queue(memoryview(data)[written:])
            assert self._loop is not None
            self._loop.add_writer(self._write_fd, self._on_writable)

    def _queue(self, data: bytes | memoryview) -> None:
        self._wbuf.append(data)
        self._wbuf_size += len(data)
        if self._wbuf_size > MAX_WRITE_BUFFER:
            self._protocol_error("the other side stopped reading (write buffer full)")
            self._schedule_lost()

    def _on_writable(self) -> None:
        while self._wbuf:
            chunk = self._wbuf[0]
            try:
                written = os.write(self._write_fd, chunk)
            except BlockingIOError:
                return
            except OSError:
                self._connection_lost()
                return
            self._wbuf_size -= written
            if written < len(chunk):
                self._wbuf[0] = memoryview(chunk)[written:]
                return
            self._wbuf.popleft()
        assert self._loop is not None
        self._loop.remove_writer(self._write_fd)

    def _schedule_lost(self) -> None:
        if self._loop is not None and not self.closed:
            self._loop.call_soon_threadsafe(self._connection_lost)

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

    # -- teardown -------------------------------------------------------------------------

    def _connection_lost(self) -> None:
        self._shutdown(RpcError(CONNECTION_CLOSED, "connection closed"), notify=True)

    def _shutdown(self, error: RpcError, *, notify: bool) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None:
            for fd, remove in (
                (self._read_fd, self._loop.remove_reader),
                (self._write_fd, self._loop.remove_writer),
            ):
                with contextlib.suppress(ValueError, OSError):
                    remove(fd)
        for fd in {self._read_fd, self._write_fd}:
            with contextlib.suppress(OSError):
                os.close(fd)
        pending, self._pending = self._pending, {}
        self._cancelled.clear()
        for future in pending.values():
            if not future.done():
                future.set_exception(RpcError(error.code, error.message))
        for task in list(self._tasks.values()):
            task.cancel()
        self._wbuf.clear()
        if notify and self._on_close is not None:
            self._on_close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


# What handlers return on the hot path; inspect.isawaitable's ABC check costs microseconds.
_PLAIN_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def is_awaitable(value: Any) -> bool:
    """inspect.isawaitable, with a shortcut for plain JSON values."""
    return type(value) not in _PLAIN_TYPES and inspect.isawaitable(value)
