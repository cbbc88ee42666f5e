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
    RpcError,
)
from .framing import DEFAULT_MAX_MESSAGE_BYTES, LineBuffer
from .incoming import CANCEL_METHOD as CANCEL_METHOD
from .incoming import Incoming, NotificationHandler, RequestHandler
from .incoming import RequestId as RequestId
from .incoming import is_awaitable as is_awaitable
from .protocol import CancelParams

READ_CHUNK = 256 * 1024
MAX_WRITE_BUFFER = 64 * 1024 * 1024


log = logging.getLogger("deeting.rpc")


class Peer(Incoming):
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
