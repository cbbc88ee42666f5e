"""JSON-RPC 2.0 error codes: the standard ones plus Deeting's own (-32000 … -32099)."""

from __future__ import annotations

from typing import Any

# Standard codes (JSON-RPC 2.0 §5.1).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# Deeting's codes, in the range the spec reserves for implementations.
PLUGIN_ERROR = -32000  # the plugin's own code raised
CALL_TIMEOUT = -32001  # no answer before the deadline
CANCELLED = -32002  # the caller cancelled the request
PERMISSION_DENIED = -32003  # a scope the plugin was not granted
MESSAGE_TOO_LARGE = -32004  # a frame over the size limit
WORKER_CRASHED = -32005  # the worker died with the call in flight
OUT_OF_MEMORY = -32006  # the plugin hit its memory limit
NOT_READY = -32007  # the worker is not (yet, or any more) serving
CONNECTION_CLOSED = -32008  # the pipe closed with the request in flight


class RpcError(Exception):
    """An error that travels as a JSON-RPC error object, or arrived as one."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    @classmethod
    def from_json(cls, error: Any) -> RpcError:
        """Build from a received error object, tolerating a malformed one."""
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return cls(
                code if isinstance(code, int) and not isinstance(code, bool) else INTERNAL_ERROR,
                message if isinstance(message, str) else "malformed error object",
                error.get("data"),
            )
        return cls(INTERNAL_ERROR, "malformed error object", error)

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r})"
