"""What one registry download may receive, what it returns, and how it says no.

Both doors of ``fetch.py`` (a local ``file://`` and http(s)) count bytes the same way and fail
the same way, so the caps, the result and the error live here, below both: a wrong length, an
overlong body or a short one is refused by the same words whichever door the bytes came in by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from deeting_tui.errors import Fix, Hint

__all__ = [
    "FIXES",
    "LENGTH_HINT",
    "TOO_BIG_HINT",
    "CappedBody",
    "FetchError",
    "FetchLimits",
    "Fetched",
    "Progress",
    "shown_url",
]

SHOWN_URL_MAX = 200


Progress = Callable[[int, int | None], None]
"""Called with (bytes received so far, expected total or None) as bytes arrive."""

#: In words; the fix (a sync) is :data:`FIXES`' hint, which each front end phrases.
LENGTH_HINT = "the copy served does not match the registry"
TOO_BIG_HINT = "check the URL; the file is larger than this client accepts"

#: The fix a command does, for the words that call for one: the front end says the command
#: (``deeting registry sync``) or where to run it, never the error's text.
FIXES: dict[str, Hint] = {LENGTH_HINT: Hint(Fix.SYNC)}


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
        #: The fix as data (a sync), for the StoreError this becomes.
        self.fix: Hint | None = FIXES.get(hint)
        self.status = status  # the HTTP status, when the server answered with an error
        super().__init__(f"cannot fetch {what} from {shown_url(url)}: {reason} — {hint}")


@dataclass(frozen=True)
class FetchLimits:
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


class CappedBody:
    """Collects chunks under the limits, so nothing past a cap is ever kept."""

    def __init__(self, what: str, url: str, limits: FetchLimits, announced: int | None) -> None:
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


def shown_url(url: str) -> str:
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
