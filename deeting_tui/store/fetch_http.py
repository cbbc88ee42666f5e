"""The http(s) door of ``fetch.py``: one GET, its redirects, and why a connection failed.

Redirects are followed by hand (at most ``MAX_REDIRECTS``, only to http(s), never from https
down to http) so every hop is checked; the body is streamed under the caps of
``fetch_limits``; a failed connection is told apart (DNS, TLS, refused, timed out) so the
one-line error says what to do about it.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import httpx

from deeting_tui import __version__

from .fetch_limits import CappedBody, Fetched, FetchError, FetchLimits, Progress, shown_url

__all__ = ["MAX_REDIRECTS", "WEB_SCHEMES", "HttpRequest", "follow", "timeouts"]

MAX_REDIRECTS = 5
# Past these, a silent socket fails on its own; below them the overall deadline governs.
CONNECT_TIMEOUT_S = 10.0
SILENCE_TIMEOUT_S = 30.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
WEB_SCHEMES = frozenset({"http", "https"})
REDIRECT_HINT = "point the URL at the final address, or fix the server's redirects"


@dataclass(frozen=True)
class HttpRequest:
    """What stays the same across the redirects of one fetch."""

    what: str
    etag: str | None
    limits: FetchLimits
    on_progress: Progress | None
    timeout: httpx.Timeout


def timeouts(deadline_s: float) -> httpx.Timeout:
    connect = CONNECT_TIMEOUT_S if deadline_s > CONNECT_TIMEOUT_S else None
    silence = SILENCE_TIMEOUT_S if deadline_s > SILENCE_TIMEOUT_S else None
    return httpx.Timeout(connect=connect, read=silence, write=silence, pool=connect)


async def follow(client: httpx.AsyncClient, url: str, req: HttpRequest) -> Fetched:
    """GET ``url``, following at most MAX_REDIRECTS redirects by the rules above."""
    headers = {"Accept-Encoding": "identity", "User-Agent": f"deeting/{__version__}"}
    if req.etag is not None:
        if any(ch in req.etag for ch in "\r\n\0"):
            raise FetchError(
                req.what, url, "the stored ETag is malformed", "delete the cached copy and retry"
            )
        headers["If-None-Match"] = req.etag
    seen = {url}
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            request = client.build_request("GET", current, headers=headers, timeout=req.timeout)
        except httpx.InvalidURL as exc:
            reason = f"it is not a valid URL ({exc})"
            raise FetchError(req.what, current, reason, "check the URL") from None
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                outcome = await _answer(response, current, req)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            problem = _transport_problem(exc, current, req.timeout)
            raise FetchError(req.what, current, *problem) from exc
        if isinstance(outcome, Fetched):
            return outcome
        if outcome in seen:
            reason = f"its redirects loop back to {shown_url(outcome)}"
            raise FetchError(req.what, current, reason, REDIRECT_HINT)
        seen.add(outcome)
        current = outcome
    reason = f"it redirects more than {MAX_REDIRECTS} times"
    raise FetchError(req.what, url, reason, REDIRECT_HINT)


async def _answer(response: httpx.Response, url: str, req: HttpRequest) -> Fetched | str:
    """The Fetched for a final answer, or the URL a redirect points to."""
    status = response.status_code
    if status in REDIRECT_STATUSES:
        return _redirect_target(response, url, req.what)
    if status == 304:
        if req.etag is None:
            reason = "the server answered 304 Not Modified to a request that was not conditional"
            raise FetchError(req.what, url, reason, "check the server", status=status)
        return Fetched(None, response.headers.get("etag") or req.etag, url)
    if status != 200:
        raise _status_error(response, url, req.what)
    return Fetched(await _read_body(response, url, req), response.headers.get("etag"), url)


async def _read_body(response: httpx.Response, url: str, req: HttpRequest) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Decoding would let a small body expand past every cap; we asked for identity.
        reason = f"the server compressed the body ({encoding}) though asked not to"
        raise FetchError(req.what, url, reason, "serve the file without Content-Encoding")
    announced = _content_length(response)
    if announced is not None:
        problem = req.limits.announced_problem(announced, "the server announces")
        if problem is not None:
            raise FetchError(req.what, url, *problem)
    body = CappedBody(req.what, url, req.limits, announced)
    async for chunk in _raw_chunks(response):
        body.add(chunk, req.on_progress)
    return body.finish()


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives; a response an in-process transport (httpx.MockTransport)
    built already read is handed over whole, under the same caps."""
    try:
        preloaded = response.content
    except httpx.ResponseNotRead:
        async for chunk in response.aiter_raw():
            yield chunk
    else:
        yield preloaded


def _content_length(response: httpx.Response) -> int | None:
    text = response.headers.get("content-length")
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None  # h11 refuses malformed lengths itself; counting still applies


def _redirect_target(response: httpx.Response, url: str, what: str) -> str:
    location = response.headers.get("location", "").strip()
    status = response.status_code
    if not location:
        reason = f"the server answered {status} without a Location to go to"
        raise FetchError(what, url, reason, "fix the server's redirect", status=status)
    try:
        target: str = urljoin(url, location)
        target_scheme = urlsplit(target).scheme.lower()
    except ValueError:
        reason = f"it redirects to an invalid URL ({shown_url(location)})"
        raise FetchError(what, url, reason, REDIRECT_HINT) from None
    if target_scheme not in WEB_SCHEMES:
        reason = f"it redirects to {shown_url(target)}, and only http(s) redirects are followed"
        raise FetchError(what, url, reason, REDIRECT_HINT)
    if urlsplit(url).scheme.lower() == "https" and target_scheme == "http":
        reason = f"it redirects from https down to plain http ({shown_url(target)})"
        raise FetchError(what, url, reason, "serve it over https end to end")
    return target


def _status_error(response: httpx.Response, url: str, what: str) -> FetchError:
    status = response.status_code
    try:
        phrase = response.reason_phrase or HTTPStatus(status).phrase
    except ValueError:
        phrase = "(unknown status)"
    if status in (404, 410):
        hint = "nothing is published there; check the URL"
    elif status in (401, 403):
        hint = "the server refuses access; check the URL and the server's permissions"
    elif status == 429 or status >= 500:
        hint = "the server is failing or busy; try again later"
    else:
        hint = "check the URL and the server"
    return FetchError(what, url, f"the server answered {status} {phrase}", hint, status=status)


def _transport_problem(
    exc: httpx.TransportError, url: str, timeout: httpx.Timeout
) -> tuple[str, str]:
    """Why the connection failed, and what to do, in words a person can act on."""
    if isinstance(exc, httpx.ConnectTimeout):
        reason = f"could not connect within {_seconds(timeout.connect)}"
        return reason, "check the host and the network"
    if isinstance(exc, httpx.ReadTimeout):
        return f"the server sent nothing for {_seconds(timeout.read)}", "try again later"
    if isinstance(exc, httpx.TimeoutException):
        return "the connection timed out", "try again later"
    if isinstance(exc, httpx.ConnectError):
        return _connect_problem(exc, urlsplit(url).hostname or "the host")
    if isinstance(exc, httpx.RemoteProtocolError):
        return (
            f"the server broke off the answer or the HTTP protocol ({exc})",
            "try again; if it persists, check the server",
        )
    return f"the connection failed ({exc or type(exc).__name__})", "try again later"


def _connect_problem(exc: httpx.ConnectError, host: str) -> tuple[str, str]:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", None) or cause
            return (
                f"TLS: the certificate of {host} was not accepted ({detail})",
                "check the host name; the server's certificate must be valid for it",
            )
        if isinstance(cause, ssl.SSLError):
            return f"TLS: the handshake with {host} failed ({cause})", "check the URL and server"
        if isinstance(cause, socket.gaierror):
            return f"DNS: the host {host} could not be resolved", "check the host name"
        if isinstance(cause, ConnectionRefusedError):
            return f"the connection to {host} was refused", "is the server running? check the port"
    return f"could not connect to {host} ({exc})", "check the host and the network"


def _seconds(value: float | None) -> str:
    return "a while" if value is None else f"{value:g} s"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Every exception behind ``exc``: its causes, contexts and grouped members."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
