"""The kernel's event bus: topics, priorities, first-handled and broadcast delivery.

Everything that reacts to the user or the clock (kernel parts, plugins, the
assistant) is a subscriber here, so the bus decides who gets a message first and
whether anyone after it still sees it. It runs on the asyncio thread and is the
hot path of the kernel, hence the per-topic cache.
"""

from __future__ import annotations

import inspect
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["FIRST_HANDLED_TOPICS", "EventBus", "Handler", "Subscription"]

Handler = Callable[[str, dict[str, Any]], Awaitable[bool | None] | bool | None]
ErrorHandler = Callable[["Subscription", str, BaseException], None]

#: Topics that are offered to one handler after another until one claims them;
#: everything else is broadcast.
FIRST_HANDLED_TOPICS = frozenset({"user.message", "user.image"})

_TOPIC_RE = re.compile(r"[A-Za-z0-9_.-]+")
_PATTERN_RE = re.compile(r"[A-Za-z0-9_.*-]+")
# Plugins may publish on topics they make up (stream.<anything>); bound the cache
# so a chatty plugin cannot grow it without limit.
_CACHE_LIMIT = 4096

_log = logging.getLogger("deeting.bus")


@dataclass(eq=False)
class Subscription:
    """One handler's interest in a topic pattern; identity is the subscription itself."""

    pattern: str
    handler: Handler
    priority: int
    owner: str | None
    seq: int
    #: Breaks ties of priority before ``seq`` does: the kernel gives a plugin its install
    #: time, so the earlier-installed plugin goes first whatever order they were started in.
    order: float = 0.0
    # False once unsubscribed, so a publish that took its snapshot earlier skips it.
    _live: bool = field(default=True, init=False, repr=False)


def _default_on_error(sub: Subscription, topic: str, exc: BaseException) -> None:
    _log.error(
        "subscriber %r (owner %s) failed on %r",
        sub.pattern,
        sub.owner or "kernel",
        topic,
        exc_info=exc,
    )


def _check_topic(topic: str) -> None:
    if not isinstance(topic, str) or not _TOPIC_RE.fullmatch(topic):
        raise ValueError(
            f"invalid topic {topic!r}: a published topic must be non-empty and use only "
            "letters, digits, '_', '.' and '-' (no '*')"
        )


def _check_pattern(pattern: str) -> None:
    if not isinstance(pattern, str) or not _PATTERN_RE.fullmatch(pattern):
        raise ValueError(
            f"invalid topic pattern {pattern!r}: use letters, digits, '_', '.', '-' "
            "and '*' (e.g. 'stream.*')"
        )


def _matches(pattern: str, topic: str) -> bool:
    return pattern == topic if "*" not in pattern else fnmatchcase(topic, pattern)


class EventBus:
    """Delivers published events to subscribers, highest priority first; equal priorities
    by ``order`` (0 unless given), then in subscription order.

    Handlers may be sync or async and return True to claim a first-handled topic.
    A handler that raises is reported through ``on_error`` and counted as not
    handled: one bad subscriber never stops delivery to the others.
    """

    def __init__(self, on_error: ErrorHandler | None = None) -> None:
        self._on_error = on_error or _default_on_error
        self._subs: dict[Subscription, None] = {}  # an ordered identity set
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._next_seq = 0
        # Swapped-out subscriptions, alive only while some publish still holds them.
        self._retired: weakref.WeakSet[Subscription] = weakref.WeakSet()

    def _new(
        self,
        pattern: str,
        handler: Handler,
        priority: int,
        owner: str | None,
        seq: int | None,
        order: float = 0.0,
    ) -> Subscription:
        _check_pattern(pattern)
        if not callable(handler):
            raise TypeError(f"handler for {pattern!r} is not callable: {handler!r}")
        if seq is None:
            seq = self._next_seq
            self._next_seq += 1
        return Subscription(pattern, handler, int(priority), owner, seq, float(order))

    def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        priority: int = 0,
        owner: str | None = None,
        order: float = 0.0,
    ) -> Subscription:
        """``order`` ranks equal priorities (lower first) before subscription order does."""
        sub = self._new(pattern, handler, priority, owner, None, order)
        self._subs[sub] = None
        self._cache.clear()
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription._live = False
        if subscription in self._subs:
            del self._subs[subscription]
            self._cache.clear()

    def unsubscribe_owner(self, owner: str) -> int:
        doomed = [s for s in self._subs if s.owner == owner]
        for sub in doomed:
            self.unsubscribe(sub)
        # Versions swapped out by replace_owner may still sit in an in-flight
        # publish's snapshot; once the owner is gone they must not run either.
        for sub in [s for s in self._retired if s.owner == owner]:
            sub._live = False
        return len(doomed)

    def replace_owner(
        self, owner: str, subscriptions: list[tuple[str, Handler, int]], *, order: float = 0.0
    ) -> list[Subscription]:
        """Swap all of ``owner``'s subscriptions in one step, for hot upgrades.

        Every publish sees exactly one version of the owner: those started
        before the swap finish with the old handlers, later ones see only the
        new. The new subscriptions inherit the old ones' sequence numbers (in
        order) so an upgrade does not move a plugin behind its equal-priority
        peers.
        """
        old = sorted((s for s in self._subs if s.owner == owner), key=lambda s: s.seq)
        seqs: list[int | None] = [s.seq for s in old]
        new = [
            self._new(pattern, handler, priority, owner, seqs[i] if i < len(seqs) else None, order)
            for i, (pattern, handler, priority) in enumerate(subscriptions)
        ]  # validate everything before touching the registry
        for sub in old:
            # Not marked dead: a publish already in flight keeps the old version.
            del self._subs[sub]
            self._retired.add(sub)
        for sub in new:
            self._subs[sub] = None
        self._cache.clear()
        return new

    def _matching(self, topic: str) -> tuple[Subscription, ...]:
        subs = self._cache.get(topic)
        if subs is None:
            _check_topic(topic)
            found = [s for s in self._subs if _matches(s.pattern, topic)]
            found.sort(key=lambda s: (-s.priority, s.order, s.seq))
            subs = tuple(found)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[topic] = subs
        return subs

    def subscribers(self, topic: str) -> list[Subscription]:
        return list(self._matching(topic))

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._matching(topic))

    async def publish(self, topic: str, payload: dict[str, Any]) -> bool:
        """Deliver ``payload``; for first-handled topics True means someone claimed it,
        for broadcast topics True means at least one subscriber received it."""
        first_handled = topic in FIRST_HANDLED_TOPICS
        delivered = False
        for sub in self._matching(topic):
            if not sub._live:  # unsubscribed by an earlier handler of this publish
                continue
            delivered = True
            try:
                result = sub.handler(topic, payload)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                try:
                    self._on_error(sub, topic, exc)
                except Exception:
                    _log.exception("bus on_error hook failed")
                continue
            if first_handled and result is True:
                return True
        return delivered and not first_handled
