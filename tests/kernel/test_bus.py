from __future__ import annotations

import asyncio
from typing import Any

import pytest

from deeting_tui.kernel.bus import FIRST_HANDLED_TOPICS, EventBus, Subscription


class Recorder:
    """Handlers that log their name (and the topic) when called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def sync(self, name: str, result: bool | None = None):  # type: ignore[no-untyped-def]
        def handler(topic: str, payload: dict[str, Any]) -> bool | None:
            self.calls.append(name)
            return result

        return handler

    def aio(self, name: str, result: bool | None = None):  # type: ignore[no-untyped-def]
        async def handler(topic: str, payload: dict[str, Any]) -> bool | None:
            await asyncio.sleep(0)  # a real suspension point
            self.calls.append(name)
            return result

        return handler


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def errors() -> list[tuple[Subscription, str, BaseException]]:
    return []


@pytest.fixture
def bus(errors: list[tuple[Subscription, str, BaseException]]) -> EventBus:
    return EventBus(on_error=lambda sub, topic, exc: errors.append((sub, topic, exc)))


def test_first_handled_topics() -> None:
    assert frozenset({"user.message", "user.image"}) == FIRST_HANDLED_TOPICS


async def test_priority_order_highest_first(bus: EventBus, rec: Recorder) -> None:
    bus.subscribe("system.tick", rec.sync("low"), priority=-5)
    bus.subscribe("system.tick", rec.sync("high"), priority=100)
    bus.subscribe("system.tick", rec.sync("mid"))
    assert await bus.publish("system.tick", {"ts": 1.0}) is True
    assert rec.calls == ["high", "mid", "low"]
    assert [s.priority for s in bus.subscribers("system.tick")] == [100, 0, -5]


async def test_equal_priorities_keep_subscription_order(bus: EventBus, rec: Recorder) -> None:
    for name in "abcde":
        bus.subscribe("plugin.x", rec.sync(name), priority=7)
    bus.subscribe("plugin.x", rec.sync("first"), priority=8)
    await bus.publish("plugin.x", {})
    assert rec.calls == ["first", "a", "b", "c", "d", "e"]


async def test_order_ranks_equal_priorities_before_subscription_order(
    bus: EventBus, rec: Recorder
) -> None:
    bus.subscribe("user.message", rec.sync("later-installed"), priority=7, order=200.0)
    bus.subscribe("user.message", rec.sync("earlier-installed"), priority=7, order=100.0)
    bus.subscribe("user.message", rec.sync("higher"), priority=8, order=300.0)
    await bus.publish("user.message", {})
    assert rec.calls == ["higher", "earlier-installed", "later-installed"]
    bus.replace_owner("x", [("user.message", rec.sync("replaced"), 7)], order=150.0)
    rec.calls.clear()
    await bus.publish("user.message", {})
    assert rec.calls == ["higher", "earlier-installed", "replaced", "later-installed"]


@pytest.mark.parametrize("topic", ["user.message", "user.image"])
async def test_first_handled_stops_at_first_true(bus: EventBus, rec: Recorder, topic: str) -> None:
    bus.subscribe(topic, rec.sync("declines", None), priority=90)
    bus.subscribe(topic, rec.sync("false", False), priority=80)
    bus.subscribe(topic, rec.aio("claims", True), priority=50)
    bus.subscribe(topic, rec.sync("assistant", True), priority=-1000)
    assert await bus.publish(topic, {"text": "hi"}) is True
    assert rec.calls == ["declines", "false", "claims"]


async def test_first_handled_only_true_counts(bus: EventBus, rec: Recorder) -> None:
    bus.subscribe("user.message", rec.sync("truthy", 1), priority=2)  # type: ignore[arg-type]
    bus.subscribe("user.message", rec.sync("none"), priority=1)
    assert await bus.publish("user.message", {"text": "hi"}) is False  # nobody claimed it
    assert rec.calls == ["truthy", "none"]
    assert await bus.publish("user.message", {"text": "nobody"}) is False


@pytest.mark.parametrize("topic", ["system.tick", "plugin.x", "stream.x"])
async def test_broadcast_reaches_everyone(bus: EventBus, rec: Recorder, topic: str) -> None:
    bus.subscribe(topic, rec.sync("a", True), priority=3)
    bus.subscribe(topic, rec.aio("b", True), priority=2)
    bus.subscribe(topic, rec.sync("c", False), priority=1)
    assert await bus.publish(topic, {}) is True
    assert rec.calls == ["a", "b", "c"]


async def test_publish_without_subscribers(bus: EventBus) -> None:
    assert await bus.publish("system.tick", {}) is False
    assert not bus.has_subscribers("system.tick")


async def test_star_patterns(bus: EventBus, rec: Recorder) -> None:
    bus.subscribe("stream.*", rec.sync("stream.*"))
    bus.subscribe("*", rec.sync("*"), priority=-1)
    bus.subscribe("plugin.*.done", rec.sync("plugin.*.done"), priority=1)
    bus.subscribe("user.*", rec.sync("user.*", True), priority=5)
    await bus.publish("stream.weather", {})
    assert rec.calls == ["stream.*", "*"]
    rec.calls.clear()
    await bus.publish("plugin.weather.done", {})
    assert rec.calls == ["plugin.*.done", "*"]
    rec.calls.clear()
    await bus.publish("plugin.weather", {})
    assert rec.calls == ["*"]
    rec.calls.clear()
    assert await bus.publish("user.message", {"text": "x"}) is True
    assert rec.calls == ["user.*"]  # first-handled applies to the topic, whatever the pattern
    assert bus.has_subscribers("anything.at.all")


async def test_payload_and_topic_reach_handler(bus: EventBus) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def handler(topic: str, payload: dict[str, Any]) -> None:
        seen.append((topic, payload))

    bus.subscribe("stream.*", handler)
    await bus.publish("stream.a", {"n": 1})
    assert seen == [("stream.a", {"n": 1})]


async def test_raising_handler_is_reported_and_delivery_goes_on(
    bus: EventBus, rec: Recorder, errors: list[tuple[Subscription, str, BaseException]]
) -> None:
    def boom(topic: str, payload: dict[str, Any]) -> bool:
        raise RuntimeError("sync boom")

    async def aboom(topic: str, payload: dict[str, Any]) -> bool:
        await asyncio.sleep(0)
        raise KeyError("async boom")

    bad = bus.subscribe("user.message", boom, priority=10, owner="bad")
    abad = bus.subscribe("user.message", aboom, priority=9)
    bus.subscribe("user.message", rec.sync("good", True), priority=1)
    assert await bus.publish("user.message", {"text": "hi"}) is True
    assert rec.calls == ["good"]
    assert [(s, t, type(e)) for s, t, e in errors] == [
        (bad, "user.message", RuntimeError),
        (abad, "user.message", KeyError),
    ]


async def test_failing_on_error_hook_does_not_stop_delivery(rec: Recorder) -> None:
    def hook(sub: Subscription, topic: str, exc: BaseException) -> None:
        raise ValueError("hook broke")

    bus = EventBus(on_error=hook)
    bus.subscribe("system.tick", lambda t, p: 1 / 0, priority=1)
    bus.subscribe("system.tick", rec.sync("after"))
    assert await bus.publish("system.tick", {}) is True
    assert rec.calls == ["after"]


async def test_default_on_error_logs(caplog: pytest.LogCaptureFixture, rec: Recorder) -> None:
    bus = EventBus()
    bus.subscribe("system.tick", lambda t, p: 1 / 0, owner="weather", priority=1)
    bus.subscribe("system.tick", rec.sync("after"))
    await bus.publish("system.tick", {})
    assert rec.calls == ["after"]
    assert "weather" in caplog.text and "ZeroDivisionError" in caplog.text


async def test_unsubscribe_during_publish(bus: EventBus, rec: Recorder) -> None:
    later: list[Subscription] = []

    def remover(topic: str, payload: dict[str, Any]) -> None:
        rec.calls.append("remover")
        bus.unsubscribe(later[0])
        bus.unsubscribe(me)  # removing yourself is fine too

    me = bus.subscribe("plugin.x", remover, priority=10)
    later.append(bus.subscribe("plugin.x", rec.sync("removed"), priority=5))
    bus.subscribe("plugin.x", rec.sync("kept"), priority=1)
    await bus.publish("plugin.x", {})
    assert rec.calls == ["remover", "kept"]
    rec.calls.clear()
    await bus.publish("plugin.x", {})
    assert rec.calls == ["kept"]
    bus.unsubscribe(later[0])  # twice is harmless


async def test_subscribe_during_publish_takes_effect_next_time(
    bus: EventBus, rec: Recorder
) -> None:
    def adder(topic: str, payload: dict[str, Any]) -> None:
        rec.calls.append("adder")
        bus.subscribe("plugin.x", rec.sync("new"), priority=100)

    bus.subscribe("plugin.x", adder, priority=10)
    await bus.publish("plugin.x", {})
    assert rec.calls == ["adder"]
    rec.calls.clear()
    await bus.publish("plugin.x", {})
    assert rec.calls == ["new", "adder"]


async def test_unsubscribe_owner(bus: EventBus, rec: Recorder) -> None:
    bus.subscribe("system.tick", rec.sync("w1"), owner="weather")
    bus.subscribe("stream.*", rec.sync("w2"), owner="weather")
    bus.subscribe("system.tick", rec.sync("other"), owner="clock")
    bus.subscribe("system.tick", rec.sync("kernel"))
    assert bus.unsubscribe_owner("weather") == 2
    assert bus.unsubscribe_owner("weather") == 0
    await bus.publish("system.tick", {})
    await bus.publish("stream.x", {})
    assert rec.calls == ["other", "kernel"]


async def test_replace_owner_keeps_place_among_equal_priorities(
    bus: EventBus, rec: Recorder
) -> None:
    bus.subscribe("plugin.x", rec.sync("before"), priority=5)
    old = bus.subscribe("plugin.x", rec.sync("v1"), priority=5, owner="p")
    bus.subscribe("plugin.x", rec.sync("after"), priority=5)
    new = bus.replace_owner(
        "p", [("plugin.x", rec.sync("v2"), 5), ("stream.*", rec.sync("v2-stream"), 0)]
    )
    assert len(new) == 2 and all(s.owner == "p" for s in new)
    assert new[0].seq == old.seq
    await bus.publish("plugin.x", {})
    await bus.publish("stream.y", {})
    assert rec.calls == ["before", "v2", "after", "v2-stream"]
    assert bus.unsubscribe_owner("p") == 2


async def test_replace_owner_validates_before_touching_anything(
    bus: EventBus, rec: Recorder
) -> None:
    bus.subscribe("plugin.x", rec.sync("v1"), owner="p")
    with pytest.raises(ValueError):
        bus.replace_owner("p", [("plugin.x", rec.sync("v2"), 0), ("bad pattern", rec.sync("x"), 0)])
    await bus.publish("plugin.x", {})
    assert rec.calls == ["v1"]


async def test_replace_owner_during_publish_finishes_with_old_version(
    bus: EventBus, rec: Recorder
) -> None:
    upgraded = False

    def upgrader(topic: str, payload: dict[str, Any]) -> None:
        nonlocal upgraded
        rec.calls.append("upgrader")
        if not upgraded:
            upgraded = True
            bus.replace_owner("p", [("plugin.x", rec.sync("v2"), 1)])

    bus.subscribe("plugin.x", upgrader, priority=10)
    bus.subscribe("plugin.x", rec.sync("v1"), priority=1, owner="p")
    await bus.publish("plugin.x", {})
    assert rec.calls == ["upgrader", "v1"]  # the in-flight publish sees one version: the old
    rec.calls.clear()
    await bus.publish("plugin.x", {})
    assert rec.calls == ["upgrader", "v2"]


async def test_unsubscribe_owner_during_publish_stops_retired_versions(
    bus: EventBus, rec: Recorder
) -> None:
    def killer(topic: str, payload: dict[str, Any]) -> None:
        rec.calls.append("killer")
        bus.replace_owner("p", [("plugin.x", rec.sync("v2"), 1)])
        bus.unsubscribe_owner("p")  # e.g. the upgrade failed and the plugin is disabled

    bus.subscribe("plugin.x", killer, priority=10)
    bus.subscribe("plugin.x", rec.sync("v1"), priority=1, owner="p")
    await bus.publish("plugin.x", {})
    assert rec.calls == ["killer"]


async def test_concurrent_publishes_interleave_safely(bus: EventBus, rec: Recorder) -> None:
    gate = asyncio.Event()

    async def waits(topic: str, payload: dict[str, Any]) -> None:
        rec.calls.append(f"wait-{payload['n']}")
        await gate.wait()
        rec.calls.append(f"done-{payload['n']}")

    bus.subscribe("plugin.x", waits)
    first = asyncio.create_task(bus.publish("plugin.x", {"n": 1}))
    second = asyncio.create_task(bus.publish("plugin.x", {"n": 2}))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, second) == [True, True]
    assert sorted(rec.calls) == ["done-1", "done-2", "wait-1", "wait-2"]


@pytest.mark.parametrize("topic", ["", "user message", "stream.*", "a/b", "ü"])
async def test_invalid_topics(bus: EventBus, topic: str) -> None:
    with pytest.raises(ValueError, match="invalid topic"):
        await bus.publish(topic, {})
    with pytest.raises(ValueError, match="invalid topic"):
        bus.subscribers(topic)


@pytest.mark.parametrize("pattern", ["", "user message", "a/b", "stream.?", "[ab]"])
def test_invalid_patterns(bus: EventBus, pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid topic pattern"):
        bus.subscribe(pattern, lambda t, p: None)


def test_non_callable_handler(bus: EventBus) -> None:
    with pytest.raises(TypeError, match="not callable"):
        bus.subscribe("system.tick", "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bus.subscribe(None, lambda t, p: None)  # type: ignore[arg-type]
