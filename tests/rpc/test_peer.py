"""Peer tests: two Peers (or a Peer and a raw byte end) on os.pipe() pairs in one loop."""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from deeting_tui.rpc import peer as peer_module
from deeting_tui.rpc.errors import (
    CANCELLED,
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    MESSAGE_TOO_LARGE,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)
from deeting_tui.rpc.framing import LineBuffer, Oversized
from deeting_tui.rpc.peer import CANCEL_METHOD, Peer

# Only a guard against a hang turning into a stuck test run; nothing waits on it normally.
GUARD_S = 10.0


async def wait(event: asyncio.Event) -> None:
    async with asyncio.timeout(GUARD_S):
        await event.wait()


def echo(method: str, params: Any, request_id: int | str) -> Any:
    if method == "echo":
        return params
    raise RpcError(METHOD_NOT_FOUND, f"no method {method}")


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():  # the reader may fire again before the waiter runs
        ready.set_result(None)


class Raw:
    """The far end of a Peer, spoken in bytes, so tests can send what a Peer never would."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd = write_fd
        self.read_fd = read_fd
        os.set_blocking(read_fd, False)
        self._buffer = LineBuffer(64 * 1024 * 1024)
        self._frames: list[bytes | Oversized] = []
        self._open = {write_fd, read_fd}

    def send(self, data: bytes | dict[str, Any] | list[Any]) -> None:
        if not isinstance(data, bytes):
            data = orjson.dumps(data) + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    async def recv(self) -> Any:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(GUARD_S):
            while not self._frames:
                ready = loop.create_future()
                loop.add_reader(self.read_fd, _wake, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(self.read_fd)
                data = os.read(self.read_fd, 1 << 20)
                if not data:
                    raise EOFError
                self._frames.extend(self._buffer.feed(data))
        frame = self._frames.pop(0)
        assert isinstance(frame, bytes)
        return orjson.loads(frame)

    def close_write(self) -> None:
        self._close(self.write_fd)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def close(self) -> None:
        for fd in list(self._open):
            self._close(fd)


MakePair = Callable[..., tuple[Peer, Peer]]
MakeRaw = Callable[..., tuple[Peer, Raw]]


@pytest.fixture
async def make_pair() -> AsyncIterator[MakePair]:
    peers: list[Peer] = []

    def make(a: dict[str, Any] | None = None, b: dict[str, Any] | None = None) -> tuple[Peer, Peer]:
        a_read, b_write = os.pipe()
        b_read, a_write = os.pipe()
        pa = Peer(a_read, a_write, **(a or {}))
        pb = Peer(b_read, b_write, **(b or {}))
        pa.start()
        pb.start()
        peers.extend((pa, pb))
        return pa, pb

    yield make
    for p in peers:
        p.close()


@pytest.fixture
async def make_raw() -> AsyncIterator[MakeRaw]:
    made: list[tuple[Peer, Raw]] = []

    def make(**kwargs: Any) -> tuple[Peer, Raw]:
        peer_read, raw_write = os.pipe()
        raw_read, peer_write = os.pipe()
        peer = Peer(peer_read, peer_write, **kwargs)
        peer.start()
        raw = Raw(raw_write, raw_read)
        made.append((peer, raw))
        return peer, raw

    yield make
    for peer, raw in made:
        peer.close()
        raw.close()


@pytest.fixture
def protocol_errors() -> list[str]:
    return []


@pytest.fixture
async def raw_peer(make_raw: MakeRaw, protocol_errors: list[str]) -> tuple[Peer, Raw]:
    return make_raw(request_handler=echo, on_protocol_error=protocol_errors.append)


def error_of(reply: dict[str, Any]) -> tuple[Any, int]:
    assert reply["jsonrpc"] == "2.0"
    assert "result" not in reply
    return reply["id"], reply["error"]["code"]


# -- requests and notifications ---------------------------------------------------------


async def test_request_response(make_pair: MakePair) -> None:
    a, _b = make_pair(b={"request_handler": echo})
    assert await a.request("echo", {"x": [1, "two", None]}) == {"x": [1, "two", None]}
    assert await a.request("echo", [1, 2]) == [1, 2]
    assert await a.request("echo") is None
    results = await asyncio.gather(*(a.request("echo", {"i": i}) for i in range(50)))
    assert results == [{"i": i} for i in range(50)]
    assert a.pending_count == 0


async def test_requests_both_ways(make_pair: MakePair) -> None:
    a, b = make_pair(a={"request_handler": echo}, b={"request_handler": echo})
    assert await asyncio.gather(a.request("echo", {"to": "b"}), b.request("echo", {"to": "a"})) == [
        {"to": "b"},
        {"to": "a"},
    ]


async def test_notifications(make_pair: MakePair) -> None:
    got: list[tuple[str, Any]] = []
    done = asyncio.Event()

    def on_note(method: str, params: Any) -> None:
        got.append((method, params))
        if method == "last":
            done.set()

    a, _b = make_pair(b={"notification_handler": on_note})
    a.notify("progress", {"fraction": 0.5})
    a.notify("bare")
    a.notify("list", [1])
    a.notify("last", {})
    await wait(done)
    assert got == [("progress", {"fraction": 0.5}), ("bare", None), ("list", [1]), ("last", {})]


async def test_notification_handler_error_does_not_stop_serving(make_pair: MakePair) -> None:
    got: list[str] = []

    def on_note(method: str, params: Any) -> None:
        got.append(method)
        if method == "bad":
            raise RuntimeError("handler broke")

    a, _b = make_pair(b={"notification_handler": on_note, "request_handler": echo})
    a.notify("bad")
    a.notify("good")
    assert await a.request("echo", [1]) == [1]  # answered after both notifications ran
    assert got == ["bad", "good"]


async def test_notifications_without_handler_are_ignored(make_pair: MakePair) -> None:
    a, _b = make_pair(b={"request_handler": echo})
    a.notify("nobody.listens", {"x": 1})
    assert await a.request("echo", ["still here"]) == ["still here"]


async def test_async_handler(make_pair: MakePair) -> None:
    async def handler(method: str, params: Any, request_id: int | str) -> Any:
        await asyncio.sleep(0)
        return {"method": method, "id": request_id, "params": params}

    a, _b = make_pair(b={"request_handler": handler})
    request_id, future = a.request_future("work", {"n": 1})
    assert await future == {"method": "work", "id": request_id, "params": {"n": 1}}


async def test_handler_raising_gives_internal_error(make_pair: MakePair) -> None:
    async def handler(method: str, params: Any, request_id: int | str) -> Any:
        if method == "sync":
            raise ValueError("bad value")
        await asyncio.sleep(0)
        raise KeyError("missing")

    def dispatch(method: str, params: Any, request_id: int | str) -> Any:
        if method == "sync":
            raise ValueError("bad value")
        return handler(method, params, request_id)

    a, _b = make_pair(b={"request_handler": dispatch})
    with pytest.raises(RpcError) as info:
        await a.request("sync")
    assert info.value.code == INTERNAL_ERROR
    assert info.value.message == "ValueError: bad value"
    with pytest.raises(RpcError) as info:
        await a.request("async")
    assert info.value.code == INTERNAL_ERROR
    assert "KeyError" in info.value.message


async def test_rpc_error_from_handler_keeps_its_code(make_pair: MakePair) -> None:
    async def later(params: Any) -> Any:
        await asyncio.sleep(0)
        raise RpcError(INVALID_PARAMS, "async: bad params", {"field": "city"})

    def handler(method: str, params: Any, request_id: int | str) -> Any:
        if method == "sync":
            raise RpcError(-32010, "custom", [1, 2])
        return later(params)

    a, _b = make_pair(b={"request_handler": handler})
    with pytest.raises(RpcError) as info:
        await a.request("sync")
    assert (info.value.code, info.value.message, info.value.data) == (-32010, "custom", [1, 2])
    with pytest.raises(RpcError) as info:
        await a.request("async")
    assert (info.value.code, info.value.data) == (INVALID_PARAMS, {"field": "city"})


async def test_unknown_method_without_handler(make_pair: MakePair) -> None:
    a, _b = make_pair()
    with pytest.raises(RpcError) as info:
        await a.request("anything", {})
    assert info.value.code == METHOD_NOT_FOUND
    assert "anything" in info.value.message


async def test_non_json_result_and_params(make_pair: MakePair) -> None:
    a, _b = make_pair(b={"request_handler": lambda m, p, i: {"obj": object()}})
    with pytest.raises(RpcError) as info:
        await a.request("x")
    assert info.value.code == INTERNAL_ERROR and "not JSON" in info.value.message
    with pytest.raises(RpcError) as info:
        a.request_future("x", {"obj": object()})
    assert info.value.code == INTERNAL_ERROR
    assert a.pending_count == 0


# -- cancellation -----------------------------------------------------------------------


class Slow:
    """An async handler that runs until cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    def __call__(self, method: str, params: Any, request_id: int | str) -> Any:
        if method == "echo":
            return params
        return self._run()

    async def _run(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_cancel_request_notification_cancels_the_task(make_pair: MakePair) -> None:
    slow = Slow()
    a, _b = make_pair(b={"request_handler": slow})
    request_id, future = a.request_future("slow")
    await wait(slow.started)
    a.notify(CANCEL_METHOD, {"id": request_id})
    with pytest.raises(RpcError) as info:
        await future  # the answer comes from the other side
    assert info.value.code == CANCELLED
    assert slow.cancelled.is_set()
    assert await a.request("echo", ["alive"]) == ["alive"]


async def test_cancel_fails_locally_and_drops_the_late_answer(
    make_pair: MakePair, protocol_errors: list[str]
) -> None:
    slow = Slow()
    a, _b = make_pair(a={"on_protocol_error": protocol_errors.append}, b={"request_handler": slow})
    answered = asyncio.Event()
    a.on_response = lambda rid: answered.set()
    request_id, future = a.request_future("slow")
    await wait(slow.started)
    a.cancel(request_id, "user pressed escape")
    assert future.done()
    with pytest.raises(RpcError) as info:
        await future
    assert (info.value.code, info.value.message) == (CANCELLED, "user pressed escape")
    await wait(slow.cancelled)
    await wait(answered)  # the other side's CANCELLED answer arrived ...
    assert protocol_errors == []  # ... and was not taken for a stray response
    a.cancel(request_id)  # cancelling twice (or an answered request) is a no-op
    assert await a.request("echo", ["alive"]) == ["alive"]


async def test_cancel_unknown_or_finished_task_is_harmless(make_pair: MakePair) -> None:
    a, _b = make_pair(b={"request_handler": echo})
    a.notify(CANCEL_METHOD, {"id": 12345})
    a.notify(CANCEL_METHOD, {"id": None})
    a.notify(CANCEL_METHOD, "garbage")
    assert await a.request("echo", [1]) == [1]


async def test_request_id_var_is_set_in_handlers(make_pair: MakePair) -> None:
    var: contextvars.ContextVar[Any] = contextvars.ContextVar("call_id", default=None)

    async def later() -> Any:
        await asyncio.sleep(0)
        inner = asyncio.create_task(asyncio.sleep(0, var.get()))  # inherited by child tasks
        return {"after_await": var.get(), "child": await inner}

    def handler(method: str, params: Any, request_id: int | str) -> Any:
        if method == "sync":
            return var.get()
        return later()

    a, _b = make_pair(b={"request_handler": handler, "request_id_var": var})
    sync_id, sync_future = a.request_future("sync")
    async_id, async_future = a.request_future("async")
    assert await sync_future == sync_id
    assert await async_future == {"after_await": async_id, "child": async_id}
    assert var.get() is None  # nothing leaks into the loop's own context


# -- malformed input --------------------------------------------------------------------


async def test_garbage_line_gets_parse_error_and_peer_keeps_serving(
    raw_peer: tuple[Peer, Raw], protocol_errors: list[str]
) -> None:
    peer, raw = raw_peer
    raw.send(b"this is not json\n")
    assert error_of(await raw.recv()) == (None, PARSE_ERROR)
    assert len(protocol_errors) == 1 and "not JSON" in protocol_errors[0]
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"ok": True}})
    assert await raw.recv() == {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}
    assert not peer.closed


async def test_oversized_line_gets_too_large_and_peer_keeps_serving(
    make_raw: MakeRaw, protocol_errors: list[str]
) -> None:
    _peer, raw = make_raw(
        request_handler=echo, on_protocol_error=protocol_errors.append, max_message_bytes=1024
    )
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["x" * 5000]})
    assert error_of(await raw.recv()) == (None, MESSAGE_TOO_LARGE)
    assert len(protocol_errors) == 1 and "1024-byte limit" in protocol_errors[0]
    raw.send({"jsonrpc": "2.0", "id": 2, "method": "echo", "params": ["x" * 900]})
    assert (await raw.recv())["result"] == ["x" * 900]


@pytest.mark.parametrize(
    ("message", "answer_id", "why"),
    [
        ([{"jsonrpc": "2.0", "id": 1, "method": "echo"}], None, "batches"),
        (5, None, "not an object"),
        ({"jsonrpc": "1.0", "id": 7, "method": "echo"}, 7, "jsonrpc"),
        ({"id": "s", "method": "echo"}, "s", "jsonrpc"),
        ({"jsonrpc": "2.0", "id": 3, "method": 42}, 3, "'method'"),
        ({"jsonrpc": "2.0", "id": 4, "method": "echo", "params": 5}, 4, "'params'"),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "echo"}, None, "'id'"),
        ({"jsonrpc": "2.0", "id": True, "method": "echo"}, None, "'id'"),
        ({"jsonrpc": "2.0", "id": None, "method": "echo"}, None, "'id'"),
        ({"jsonrpc": "2.0", "id": 9}, 9, "neither"),
    ],
)
async def test_invalid_messages(
    raw_peer: tuple[Peer, Raw],
    protocol_errors: list[str],
    message: Any,
    answer_id: Any,
    why: str,
) -> None:
    _peer, raw = raw_peer
    raw.send(message)
    assert error_of(await raw.recv()) == (answer_id, INVALID_REQUEST)
    assert len(protocol_errors) == 1 and why in protocol_errors[0]
    raw.send({"jsonrpc": "2.0", "id": 100, "method": "echo", "params": [1]})
    assert (await raw.recv())["result"] == [1]


async def test_response_to_unknown_id_is_reported(
    raw_peer: tuple[Peer, Raw], protocol_errors: list[str]
) -> None:
    _peer, raw = raw_peer
    raw.send({"jsonrpc": "2.0", "id": 999, "result": 1})
    raw.send({"jsonrpc": "2.0", "id": "abc", "error": {"code": 1, "message": "m"}})
    raw.send({"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": "m"}})
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["sync"]})
    assert (await raw.recv())["result"] == ["sync"]  # responses are never answered
    assert [e.split("id ")[-1] for e in protocol_errors] == ["999", "'abc'", "None"]


async def test_bool_id_does_not_answer_request_one(
    raw_peer: tuple[Peer, Raw], protocol_errors: list[str]
) -> None:
    peer, raw = raw_peer
    request_id, future = peer.request_future("ask", {"q": 1})
    assert request_id == 1
    assert (await raw.recv())["id"] == 1
    raw.send({"jsonrpc": "2.0", "id": True, "result": "wrong"})  # True == 1 in Python
    raw.send({"jsonrpc": "2.0", "id": 1, "result": "right"})
    assert await future == "right"
    assert protocol_errors == ["response to unknown request id True"]


async def test_error_response_fails_the_future(raw_peer: tuple[Peer, Raw]) -> None:
    peer, raw = raw_peer
    _, good = peer.request_future("a")
    _, bad = peer.request_future("b")
    _, malformed = peer.request_future("c")
    ids = [(await raw.recv())["id"] for _ in range(3)]
    raw.send({"jsonrpc": "2.0", "id": ids[0], "result": None})
    raw.send({"jsonrpc": "2.0", "id": ids[1], "error": {"code": -32001, "message": "late"}})
    raw.send({"jsonrpc": "2.0", "id": ids[2], "error": "nonsense"})
    assert await good is None
    with pytest.raises(RpcError) as info:
        await bad
    assert (info.value.code, info.value.message) == (-32001, "late")
    with pytest.raises(RpcError) as info:
        await malformed
    assert info.value.code == INTERNAL_ERROR


async def test_reused_request_id_stays_cancellable(make_raw: MakeRaw) -> None:
    release = asyncio.Event()
    slow = Slow()

    def handler(method: str, params: Any, request_id: int | str) -> Any:
        return release.wait() if method == "first" else slow(method, params, request_id)

    _peer, raw = make_raw(request_handler=handler)
    raw.send({"jsonrpc": "2.0", "id": 5, "method": "first"})
    raw.send({"jsonrpc": "2.0", "id": 5, "method": "second"})
    await wait(slow.started)
    release.set()
    assert await raw.recv() == {"jsonrpc": "2.0", "id": 5, "result": True}
    raw.send({"jsonrpc": "2.0", "method": CANCEL_METHOD, "params": {"id": 5}})
    assert error_of(await raw.recv()) == (5, CANCELLED)


# -- closing ----------------------------------------------------------------------------


async def test_close_fails_pending_with_connection_closed(make_raw: MakeRaw) -> None:
    closed: list[bool] = []
    peer, raw = make_raw(on_close=lambda: closed.append(True))
    _, first = peer.request_future("a")
    _, second = peer.request_future("b")
    read_fd = peer._read_fd
    peer.close()
    peer.close()  # idempotent
    assert peer.closed and peer.pending_count == 0
    for future in (first, second):
        with pytest.raises(RpcError) as info:
            await future
        assert info.value.code == CONNECTION_CLOSED
    assert closed == []  # on_close is for the other side going away, not for close()
    with pytest.raises(OSError):
        os.fstat(read_fd)
    _, late = peer.request_future("c")
    with pytest.raises(RpcError) as info:
        await late
    assert info.value.code == CONNECTION_CLOSED
    peer.notify("ignored")  # sending on a closed peer is a no-op
    assert [(await raw.recv())["method"] for _ in range(2)] == ["a", "b"]
    with pytest.raises(EOFError):
        await raw.recv()  # then the write end went away with the peer


async def test_eof_calls_on_close_and_fails_pending(make_raw: MakeRaw) -> None:
    closed = asyncio.Event()
    peer, raw = make_raw(on_close=closed.set)
    _, future = peer.request_future("never.answered")
    raw.close_write()
    await wait(closed)
    assert peer.closed
    with pytest.raises(RpcError) as info:
        await future
    assert info.value.code == CONNECTION_CLOSED


async def test_eof_cancels_running_handlers(make_pair: MakePair) -> None:
    slow = Slow()
    closed = asyncio.Event()
    a, _b = make_pair(b={"request_handler": slow, "on_close": closed.set})
    _, future = a.request_future("slow")
    await wait(slow.started)
    a.close()
    await wait(closed)
    await wait(slow.cancelled)
    with pytest.raises(RpcError):
        await future


async def test_write_buffer_limit_drops_a_reader_that_stopped(
    make_raw: MakeRaw, protocol_errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peer_module, "MAX_WRITE_BUFFER", 256 * 1024)
    closed = asyncio.Event()
    peer, _raw = make_raw(on_close=closed.set, on_protocol_error=protocol_errors.append)
    _, future = peer.request_future("big", ["x" * (1024 * 1024)])  # the raw end never reads
    await wait(closed)
    assert any("write buffer full" in e for e in protocol_errors)
    with pytest.raises(RpcError) as info:
        await future
    assert info.value.code == CONNECTION_CLOSED


# -- big messages and threads -----------------------------------------------------------


async def test_large_message_round_trips_with_non_blocking_writes(make_pair: MakePair) -> None:
    a, b = make_pair(b={"request_handler": echo})
    blob = os.urandom(3 * 1024 * 1024).hex()[: 8 * 1024 * 1024 - 64]  # ~8 MiB frame
    result = await a.request("echo", {"blob": blob})
    assert result == {"blob": blob}
    assert not a._wbuf and not b._wbuf
    assert a._wbuf_size == 0 and b._wbuf_size == 0


async def test_blocking_writes_from_a_thread(make_pair: MakePair) -> None:
    count = 2000
    got: list[int] = []
    done = asyncio.Event()

    def on_note(method: str, params: Any) -> None:
        got.append(params["i"])
        if len(got) == count + 1:
            done.set()

    kernel, worker = make_pair(
        a={"notification_handler": on_note},
        b={"request_handler": echo, "blocking_writes": True},
    )

    def plugin_thread() -> None:
        # ~300 KB in small frames, then 1 MiB in one: far more than a pipe holds, so these
        # writes block until the loop reads.
        for i in range(count):
            worker.notify("stream", {"i": i, "pad": "x" * 100})
        worker.notify("stream", {"i": count, "pad": "y" * (1024 * 1024)})

    thread = threading.Thread(target=plugin_thread)
    thread.start()
    await wait(done)
    thread.join()
    assert got == list(range(count + 1))
    # the blocking side answers requests from the loop thread too
    assert await kernel.request("echo", {"ok": 1}) == {"ok": 1}


def test_blocking_reads_outside_the_loop_serve_requests_and_see_the_close() -> None:
    """The worker's idle mode: the loop is not running, the peer reads in a blocking call."""
    to_peer_r, to_peer_w = os.pipe()
    from_peer_r, from_peer_w = os.pipe()
    closed: list[bool] = []
    loop = asyncio.new_event_loop()
    try:
        peer = Peer(
            to_peer_r,
            from_peer_w,
            request_handler=echo,
            on_close=lambda: closed.append(True),
            blocking_writes=True,
        )
        peer.start(loop, read_in_loop=False)
        assert os.get_blocking(to_peer_r)
        request = {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"x": 1}}
        os.write(to_peer_w, orjson.dumps(request) + b"\n")
        peer.read_blocking()
        assert orjson.loads(os.read(from_peer_r, 65536)) == {
            "jsonrpc": "2.0",
            "id": 1,
            "result": {"x": 1},
        }
        peer.set_read_in_loop(True)  # and back: the fd is non-blocking while the loop reads
        assert not os.get_blocking(to_peer_r)
        with pytest.raises(RuntimeError, match="the event loop is reading"):
            peer.read_blocking()
        peer.set_read_in_loop(False)
        os.close(to_peer_w)
        peer.read_blocking()
        assert closed == [True] and peer.closed
    finally:
        loop.close()
        os.close(from_peer_r)


def test_blocking_reads_refuse_an_fd_shared_with_non_blocking_writes() -> None:
    left, right = socket.socketpair()
    loop = asyncio.new_event_loop()
    try:
        peer = Peer(left.fileno(), left.fileno())
        with pytest.raises(ValueError, match="blocking reads"):
            peer.start(loop, read_in_loop=False)
    finally:
        loop.close()
        left.close()
        right.close()
