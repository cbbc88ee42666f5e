"""The registry client's only door to a URL, so that every download is bounded.

A registry, a mirror or anything on the path can answer with an endless body, a byte every
so often, a 10 GB Content-Length or a redirect to a local file. ``trust.py`` can only judge
the bytes it is handed; this module makes sure there are few of them, that they arrive in
time, and that they come from where the caller asked (or from a plain http(s) redirect of
it). It never parses or verifies content and never retries: the caller decides what a
failure means.

Every limit holds while streaming, before bytes pile up: ``max_bytes`` (refused as soon as
one byte more arrives, or before the body when Content-Length already says so),
``exact_length`` (an artifact's signed length: not a byte more, not a byte less),
``deadline_s`` for the whole exchange (connect, redirects, headers, body), and at most
``MAX_REDIRECTS`` redirects, never to ``file://`` and never from https down to http.
``file://`` URLs (a local registry) are read under the same caps.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

import httpx

from deeting_tui import __version__

__all__ = ["MAX_REDIRECTS", "FetchError", "Fetched", "Progress", "fetch", "resolve"]

MAX_REDIRECTS = 5
# Past these, a silent socket fails on its own; below them the overall deadline governs.
CONNECT_TIMEOUT_S = 10.0
SILENCE_TIMEOUT_S = 30.0
FILE_CHUNK = 256 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
WEB_SCHEMES = frozenset({"http", "https"})
SHOWN_URL_MAX = 200

Progress = Callable[[int, int | None], None]
"""Called with (bytes received so far, expected total or None) as bytes arrive."""

LENGTH_HINT = "the copy served does not match the registry — run: deeting registry sync"
TOO_BIG_HINT = "check the URL; the file is larger than this client accepts"
REDIRECT_HINT = "point the URL at the final address, or fix the server's redirects"


@dataclass(frozen=True)
class Fetched:
    """What a fetch got: the body, or None when the server said 304 Not Modified."""

    body: bytes | None
    etag: str | None  # the server's ETag (strong or weak), for the next conditional GET
    url: str  # the final URL, after redirects

    @property
    def not_modified(self) -> bool:
        return self.body is None


class FetchError(Exception):
    """A fetch failed; the one-line message says what, from where, why and what to do."""

    def __init__(
        self, what: str, url: str, reason: str, hint: str, *, status: int | None = None
    ) -> None:
        self.what = what
        self.url = url
        self.reason = reason
        self.hint = hint
        self.status = status  # the HTTP status, when the server answered with an error
        super().__init__(f"cannot fetch {what} from {_shown(url)}: {reason} — {hint}")


async def fetch(
    url: str,
    *,
    what: str,
    max_bytes: int,
    deadline_s: float,
    etag: str | None = None,
    exact_length: int | None = None,
    on_progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
) -> Fetched:
    """GET ``url`` (http, https or file) within every limit, or raise FetchError.

    ``what`` names the thing for messages ("the registry", "weather 1.2.0"). With ``etag``
    the request is conditional and may come back ``not_modified``. A ``client`` passed in
    stays open (its owner closes it); otherwise one is made for this call and closed.
    """
    if max_bytes < 0 or deadline_s <= 0 or (exact_length is not None and exact_length < 0):
        raise ValueError("max_bytes and exact_length must be >= 0 and deadline_s > 0")
    scheme = _checked_scheme(url, what)
    limits = _Limits(max_bytes, exact_length)
    if exact_length is not None and exact_length > max_bytes:
        reason = f"its expected {exact_length} bytes are over the {max_bytes}-byte cap"
        raise FetchError(what, url, reason, TOO_BIG_HINT)
    timer = asyncio.timeout(deadline_s)
    try:
        async with timer:
            if scheme == "file":
                return await _read_file(url, what, limits, on_progress)
            request = _Request(what, etag, limits, on_progress, _timeouts(deadline_s))
            if client is not None:
                return await _follow(client, url, request)
            async with httpx.AsyncClient(
                trust_env=False, http2=False, follow_redirects=False
            ) as owned:
                return await _follow(owned, url, request)
    except TimeoutError:
        if not timer.expired():
            raise
        raise FetchError(
            what,
            url,
            f"it did not finish within the {deadline_s:g} s deadline",
            "check the network and the server, then try again",
        ) from None


def resolve(base_url: str, reference: str) -> str:
    """A registry's link (usually relative) as an absolute URL, by the registry's own URL.

    The redirect rules apply to links too: a registry on the web may not point the client
    at a local file, and one served over https may not send it to plain http.
    """
    link = reference.strip()
    what = "a file the registry links to"
    if not link:
        raise FetchError(what, base_url, "the link is empty", "fix the registry entry")
    try:
        target: str = urljoin(base_url, link)
        base_scheme = urlsplit(base_url).scheme.lower()
        target_scheme = urlsplit(target).scheme.lower()
    except ValueError:
        raise FetchError(
            what, base_url, f"the link {link!r} is not a valid URL", "fix the registry entry"
        ) from None
    if base_scheme in WEB_SCHEMES and target_scheme == "file":
        reason = f"a registry on the web may not link to a local file ({_shown(target)})"
        raise FetchError(what, base_url, reason, "fix the registry entry")
    if base_scheme == "https" and target_scheme == "http":
        reason = f"a registry on https may not link down to http ({_shown(target)})"
        raise FetchError(what, base_url, reason, "serve the file over https")
    return target


# -- limits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    """The byte caps of one fetch; each check returns the problem in words, or None."""

    max_bytes: int
    exact: int | None

    def total(self, announced: int | None) -> int | None:
        return self.exact if self.exact is not None else announced

    def announced_problem(self, size: int, subject: str) -> tuple[str, str] | None:
        """A wrong length is the registry's business before it is the cap's: the signed
        length says more about what happened (another file) than the cap does."""
        if self.exact is not None and size != self.exact:
            return f"{subject} {size} bytes, but exactly {self.exact} were expected", LENGTH_HINT
        if size > self.max_bytes:
            return f"{subject} {size} bytes, over the {self.max_bytes}-byte cap", TOO_BIG_HINT
        return None

    def running_problem(self, received: int) -> tuple[str, str] | None:
        if self.exact is not None and received > self.exact:
            return f"more than the expected {self.exact} bytes arrived", LENGTH_HINT
        if received > self.max_bytes:
            return f"more than the {self.max_bytes}-byte cap arrived", TOO_BIG_HINT
        return None

    def final_problem(self, received: int) -> str | None:
        if self.exact is not None and received < self.exact:
            return f"the body ended after {received} bytes, but {self.exact} were expected"
        return None


class _Body:
    """Collects chunks under the limits, so nothing past a cap is ever kept."""

    def __init__(self, what: str, url: str, limits: _Limits, announced: int | None) -> None:
        self.what, self.url, self.limits = what, url, limits
        self.total = limits.total(announced)
        self.received = 0
        self.chunks: list[bytes] = []

    def add(self, chunk: bytes, on_progress: Progress | None) -> None:
        self.received += len(chunk)
        problem = self.limits.running_problem(self.received)
        if problem is not None:
            raise FetchError(self.what, self.url, *problem)
        self.chunks.append(chunk)
        if on_progress is not None:
            on_progress(self.received, self.total)

    def finish(self) -> bytes:
        problem = self.limits.final_problem(self.received)
        if problem is not None:
            raise FetchError(self.what, self.url, problem, LENGTH_HINT)
        return b"".join(self.chunks)


# -- file:// --------------------------------------------------------------------------------


async def _read_file(url: str, what: str, limits: _Limits, on_progress: Progress | None) -> Fetched:
    """Read a local file under the caps. Reads are short and local, so they run inline, with
    a yield between chunks so the deadline and the UI get their turn."""
    path = _local_path(url, what)
    try:
        # O_NONBLOCK: a FIFO put in the file's place must not block the open forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FetchError(what, url, f"there is no file {path}", "check the path") from None
    except PermissionError:
        raise FetchError(what, url, f"{path} is not readable", "check its permissions") from None
    except OSError as exc:
        reason = f"{path} cannot be opened ({exc.strerror})"
        raise FetchError(what, url, reason, "check the path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            reason = f"{path} is not a regular file"
            raise FetchError(what, url, reason, "point the URL at a file")
        problem = limits.announced_problem(info.st_size, "the file is")
        if problem is not None:
            raise FetchError(what, url, *problem)
        body = _Body(what, url, limits, info.st_size)
        while chunk := _read_chunk(fd, path, what, url):
            body.add(chunk, on_progress)
            await asyncio.sleep(0)
        return Fetched(body.finish(), None, url)
    finally:
        os.close(fd)


def _read_chunk(fd: int, path: str, what: str, url: str) -> bytes:
    try:
        return os.read(fd, FILE_CHUNK)
    except OSError as exc:
        reason = f"reading {path} failed ({exc.strerror})"
        raise FetchError(what, url, reason, "check the disk and try again") from None


def _local_path(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        reason = f"a file URL must name a local file, not one on {parts.netloc!r}"
        raise FetchError(what, url, reason, "use file:///absolute/path")
    path = url2pathname(parts.path)
    if not os.path.isabs(path):
        raise FetchError(
            what, url, "a file URL needs an absolute path", "use file:///absolute/path"
        )
    return path


# -- http(s) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """What stays the same across the redirects of one fetch."""

    what: str
    etag: str | None
    limits: _Limits
    on_progress: Progress | None
    timeout: httpx.Timeout


def _timeouts(deadline_s: float) -> httpx.Timeout:
    connect = CONNECT_TIMEOUT_S if deadline_s > CONNECT_TIMEOUT_S else None
    silence = SILENCE_TIMEOUT_S if deadline_s > SILENCE_TIMEOUT_S else None
    return httpx.Timeout(connect=connect, read=silence, write=silence, pool=connect)


async def _follow(client: httpx.AsyncClient, url: str, req: _Request) -> Fetched:
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
            reason = f"its redirects loop back to {_shown(outcome)}"
            raise FetchError(req.what, current, reason, REDIRECT_HINT)
        seen.add(outcome)
        current = outcome
    reason = f"it redirects more than {MAX_REDIRECTS} times"
    raise FetchError(req.what, url, reason, REDIRECT_HINT)


async def _answer(response: httpx.Response, url: str, req: _Request) -> Fetched | str:
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


async def _read_body(response: httpx.Response, url: str, req: _Request) -> bytes:
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
    body = _Body(req.what, url, req.limits, announced)
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
        reason = f"it redirects to an invalid URL ({_shown(location)})"
        raise FetchError(what, url, reason, REDIRECT_HINT) from None
    if target_scheme not in WEB_SCHEMES:
        reason = f"it redirects to {_shown(target)}, and only http(s) redirects are followed"
        raise FetchError(what, url, reason, REDIRECT_HINT)
    if urlsplit(url).scheme.lower() == "https" and target_scheme == "http":
        reason = f"it redirects from https down to plain http ({_shown(target)})"
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


# -- small helpers --------------------------------------------------------------------------


def _checked_scheme(url: str, what: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise FetchError(what, url, "it is not a valid URL", "check the URL") from None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES | {"file"}:
        reason = f"the scheme {scheme!r} is not supported" if scheme else "it has no scheme"
        raise FetchError(what, url, reason, "use an https://, http:// or file:// URL")
    if scheme in WEB_SCHEMES and not parts.hostname:
        raise FetchError(what, url, "it names no host", "use a URL like https://host/path")
    return scheme


def _shown(url: str) -> str:
    """A URL fit for a one-line message: no password, no control characters, not too long."""
    try:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            url = str(urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])))
    except ValueError:
        pass
    printable = "".join(ch if ch.isprintable() else "?" for ch in url)
    if len(printable) > SHOWN_URL_MAX:
        return printable[: SHOWN_URL_MAX - 1] + "…"
    return printable
