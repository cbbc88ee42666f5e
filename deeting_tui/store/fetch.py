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
``file://`` URLs (a local registry) are read here under the same caps; the http(s) exchange
is ``fetch_http.py``, and the caps, result and error both share are ``fetch_limits.py``.
"""

from __future__ import annotations

import asyncio
import os
import stat
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx

from .fetch_http import WEB_SCHEMES, HttpRequest, follow, timeouts
from .fetch_limits import (
    TOO_BIG_HINT,
    CappedBody,
    Fetched,
    FetchError,
    FetchLimits,
    Progress,
    shown_url,
)

__all__ = ["FetchError", "Fetched", "fetch", "resolve"]

FILE_CHUNK = 256 * 1024


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
    limits = FetchLimits(max_bytes, exact_length)
    if exact_length is not None and exact_length > max_bytes:
        reason = f"its expected {exact_length} bytes are over the {max_bytes}-byte cap"
        raise FetchError(what, url, reason, TOO_BIG_HINT)
    timer = asyncio.timeout(deadline_s)
    try:
        async with timer:
            if scheme == "file":
                return await _read_file(url, what, limits, on_progress)
            request = HttpRequest(what, etag, limits, on_progress, timeouts(deadline_s))
            if client is not None:
                return await follow(client, url, request)
            async with httpx.AsyncClient(
                trust_env=False, http2=False, follow_redirects=False
            ) as owned:
                return await follow(owned, url, request)
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
        reason = f"a registry on the web may not link to a local file ({shown_url(target)})"
        raise FetchError(what, base_url, reason, "fix the registry entry")
    if base_scheme == "https" and target_scheme == "http":
        reason = f"a registry on https may not link down to http ({shown_url(target)})"
        raise FetchError(what, base_url, reason, "serve the file over https")
    return target


# -- file:// --------------------------------------------------------------------------------


async def _read_file(
    url: str, what: str, limits: FetchLimits, on_progress: Progress | None
) -> Fetched:
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
        body = CappedBody(what, url, limits, info.st_size)
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
