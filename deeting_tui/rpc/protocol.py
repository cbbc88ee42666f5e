"""The worker protocol, defined once: method names and the shape of their params and results.

The kernel's supervisor (workers/supervisor.py), the worker (sandbox/worker.py) and the SDK
(sdk.py) speak JSON-RPC 2.0 over the worker's pipes (rpc/peer.py). Each message that carries
data has a frozen dataclass here: ``to_json()`` builds what goes on the wire (the bytes are
those of before: same keys, same order) and ``from_json()`` reads what arrived, checking it.

The worker is untrusted: its code is the plugin's, and a plugin can write to the pipe without
the SDK. What the kernel reads from it (an invoke result, the handshake's reply, a stream,
progress or refusal report) goes through ``from_json``, which raises :class:`ProtocolError`
naming the message, the key and what was wrong; the kernel fails that call (or drops that
report) and goes on serving.

Kernel → worker requests: ``initialize``, ``invoke``, ``on_event``, ``shutdown`` and the
lifecycle hooks; notifications: ``event`` and ``$/cancelRequest``. Worker → kernel
notifications: ``stream``, ``progress``, ``denied``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from .errors import INVALID_PARAMS, RpcError

# -- method names ----------------------------------------------------------------------------

INITIALIZE: Final = "initialize"
SHUTDOWN: Final = "shutdown"
INVOKE: Final = "invoke"
#: A request: an event the plugin may handle (``user.message``, ``user.image``); answered.
ON_EVENT: Final = "on_event"
#: A notification: an event the plugin subscribed to (``system.tick`` …); not answered.
EVENT: Final = "event"
CANCEL: Final = "$/cancelRequest"
STREAM: Final = "stream"
PROGRESS: Final = "progress"
DENIED: Final = "denied"

ACTIVATE: Final = "activate"
DEACTIVATE: Final = "deactivate"
POSTINSTALL: Final = "postinstall"
PREUNINSTALL: Final = "preuninstall"
PREUPGRADE: Final = "preupgrade"
POSTUPGRADE: Final = "postupgrade"
#: Hooks that take no params and answer ``null``.
LIFECYCLE_HOOKS: Final = (ACTIVATE, DEACTIVATE, POSTINSTALL, PREUNINSTALL, PREUPGRADE)
#: Every hook a plugin may define, as the supervisor asks for it.
HOOKS: Final = (*LIFECYCLE_HOOKS, POSTUPGRADE)


class ProtocolError(RpcError):
    """A message of the wrong shape; its ``message`` says which message, key and why."""

    def __init__(self, message: str) -> None:
        super().__init__(INVALID_PARAMS, message)


def describe(value: Any) -> str:
    """A JSON value's type, as a person would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _object(what: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be an object, not {describe(value)}")
    return value


def _text(what: str, value: Any, *, optional: bool = False) -> Any:
    if (value is None and optional) or isinstance(value, str):
        return value
    wanted = "a string or null" if optional else "a string"
    raise ProtocolError(f"{what} must be {wanted}, not {describe(value)}")


# -- kernel → worker ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvokeParams:
    """``invoke``: call one of the plugin's tools."""

    tool: str
    args: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args}

    @classmethod
    def from_json(cls, params: Any) -> InvokeParams:
        if not isinstance(params, dict) or not isinstance(params.get("tool"), str):
            raise ProtocolError("invoke needs {tool: str, args: object}")
        args = params.get("args") or {}
        if not isinstance(args, dict):
            raise ProtocolError("invoke args must be an object")
        return cls(params["tool"], args)


@dataclass(frozen=True, slots=True)
class EventParams:
    """``on_event`` (a request) and ``event`` (a notification): a bus event for the plugin."""

    topic: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "payload": self.payload}

    @classmethod
    def from_json(cls, params: Any) -> EventParams:
        if not isinstance(params, dict) or not isinstance(params.get("topic"), str):
            raise ProtocolError("an event needs {topic: str, payload: object}")
        payload = params.get("payload")
        return cls(params["topic"], payload if isinstance(payload, dict) else {})


@dataclass(frozen=True, slots=True)
class CancelParams:
    """``$/cancelRequest``: stop serving request ``id``."""

    id: int | str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id}


# -- worker → kernel: results ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What ``invoke`` answers: the data for the card, the text the model sees, the renderer
    (None: the plugin's default). The SDK builds it (``sdk.normalize_result``)."""

    data: Any = None
    text: str | None = None
    renderer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "text": self.text, "renderer": self.renderer}

    @classmethod
    def from_json(cls, result: Any) -> InvokeResult:
        what = "the invoke result"
        result = _object(what, result)
        unknown = sorted(str(key) for key in result if key not in ("data", "text", "renderer"))
        if unknown:
            raise ProtocolError(f"{what} has keys it may not have: {', '.join(unknown)}")
        return cls(
            result.get("data"),
            _text(f"{what}'s 'text'", result.get("text"), optional=True),
            _text(f"{what}'s 'renderer'", result.get("renderer"), optional=True),
        )


@dataclass(frozen=True, slots=True)
class InitializeResult:
    """The handshake's answer: the worker's pid, the hooks its plugin defines, and what the
    sandbox applied (``sandbox/enforce.py``), for ``deeting plugin info``."""

    pid: int
    hooks: tuple[str, ...] = ()
    sandbox: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "hooks": list(self.hooks), "sandbox": self.sandbox}

    @classmethod
    def from_json(cls, result: Any) -> InitializeResult:
        what = "the initialize result"
        result = _object(what, result)
        pid, hooks, sandbox = result.get("pid"), result.get("hooks", []), result.get("sandbox")
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise ProtocolError(f"{what}'s 'pid' must be a whole number, not {describe(pid)}")
        if not isinstance(hooks, list) or not all(isinstance(h, str) for h in hooks):
            raise ProtocolError(f"{what}'s 'hooks' must be an array of strings")
        if sandbox is not None and not isinstance(sandbox, dict):
            raise ProtocolError(f"{what}'s 'sandbox' must be an object, not {describe(sandbox)}")
        return cls(pid, tuple(hooks), sandbox)


@dataclass(frozen=True, slots=True)
class OnEventResult:
    """What ``on_event`` answers: whether the plugin handled the event (the bus stops)."""

    handled: bool

    def to_json(self) -> dict[str, Any]:
        return {"handled": self.handled}

    @classmethod
    def from_json(cls, result: Any) -> OnEventResult:
        # Only a true "handled" counts: anything else lets the next handler have the event.
        return cls(isinstance(result, dict) and result.get("handled") is True)


@dataclass(frozen=True, slots=True)
class UpgradeState:
    """``preupgrade``'s answer and ``postupgrade``'s params: the state the old version hands
    the new one."""

    state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state}

    @classmethod
    def from_json(cls, value: Any) -> UpgradeState:
        state = value.get("state") if isinstance(value, dict) else None
        return cls(state if isinstance(state, dict) else {})


# -- worker → kernel: notifications ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamParams:
    """``stream``: a frame of live data (``ctx.push_stream``). Its topic, renderer and payload
    are checked by the kernel's stream gate (kernel/streams.py), which says what was wrong
    once per kind of fault; here only that it is an object."""

    topic: str
    payload: Any
    renderer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "payload": self.payload, "renderer": self.renderer}

    @staticmethod
    def check(params: Any) -> dict[str, Any]:
        return _object("a stream frame", params)


@dataclass(frozen=True, slots=True)
class ProgressParams:
    """``progress``: how far the call ``call`` (the request id being served) has got."""

    call: int | str | None
    fraction: float | None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"call": self.call, "fraction": self.fraction, "message": self.message}

    @classmethod
    def from_json(cls, params: Any) -> ProgressParams:
        what = "a progress report"
        params = _object(what, params)
        call, fraction = params.get("call"), params.get("fraction")
        if isinstance(call, bool) or not isinstance(call, int | str | None):
            raise ProtocolError(f"{what}'s 'call' must be a request id, not {describe(call)}")
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, int | float):
                raise ProtocolError(
                    f"{what}'s 'fraction' must be a number or null, not {describe(fraction)}"
                )
            if not 0.0 <= fraction <= 1.0:  # NaN fails this too
                raise ProtocolError(f"{what}'s 'fraction' must be between 0 and 1")
            fraction = float(fraction)
        message = _text(f"{what}'s 'message'", params.get("message", ""))
        return cls(call, fraction, message)


@dataclass(frozen=True, slots=True)
class DeniedParams:
    """``denied``: the worker's guard refused something (a path, a syscall) and says so;
    ``scope``, when one would allow it, is the permission as text (``network``), so that the
    kernel offers the grant as a fix of its own making rather than as the worker's words.
    Only its type is checked here: the kernel parses it (it is the worker's word)."""

    message: str
    scope: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message}
        if self.scope is not None:
            data["scope"] = self.scope
        return data

    @classmethod
    def from_json(cls, params: Any) -> DeniedParams:
        what = "a refusal report"
        params = _object(what, params)
        message = _text(f"{what}'s 'message'", params.get("message"))
        if not message:
            raise ProtocolError(f"{what}'s 'message' is empty")
        scope = _text(f"{what}'s 'scope'", params.get("scope"), optional=True)
        return cls(message, scope)
