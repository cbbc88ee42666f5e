"""The board: a session's cards, built from typed kernel events, and the ops a page follows.

A card is one tool call (its result, or "running…" until it comes) or one live stream (its
latest frame). Every payload is checked against its renderer's ``schema.json`` here, before
a browser sees it: data that does not fit, a payload too big to send, a failed call, all
become an ``error`` card that says what went wrong, never an exception. The board keeps the
newest :data:`MAX_CARDS` cards (what a page gets on connecting) and counts the ones it let go.

The shapes (CARD, RESULT, the ops) are the contract between the server and the host page,
written down in ``deeting_tui/web/page/host.js``'s header and kept by tests/web.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Any

import orjson

from deeting_tui.kernel.events import ErrorEvent, Event, Progress, StreamFrame, ToolCall, ToolResult
from deeting_tui.kernel.renderers import PayloadSchemas
from deeting_tui.resources import core_renderers_dir

__all__ = ["MAX_CARDS", "MAX_PAYLOAD_BYTES", "UNREADABLE_KEY", "Board", "card_id"]

#: The cards a page is sent on connecting; older ones are counted ("N older cards").
MAX_CARDS = 200
#: The most JSON one result may weigh: a browser tab is no place for more, and one huge
#: payload must not stall every other card behind it on the wire.
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
#: An ErrorEvent carrying this key in ``extra`` stands for a stored event that could not be
#: read (follow.py): it becomes an error card of its own instead of being dropped unseen.
UNREADABLE_KEY = "deeting/unreadable_seq"
#: The face for data whose renderer has no folder (or that names none): escaped JSON.
FALLBACK = "_fallback"
#: The renderer of an MCP server's app: its HTML is served as a document of its own, at
#: ``/app/NONCE`` (the card's ``app``), and left out of the card the page gets.
APP = "mcp-app"

Op = dict[str, Any]
Card = dict[str, Any]


def card_id(event: Event) -> str | None:
    """The id of the card an event makes or updates, or None for kinds that make no card."""
    if isinstance(event, ToolCall | ToolResult | Progress):
        return event.call_id or None
    if isinstance(event, StreamFrame):
        return f"stream:{event.plugin}:{event.topic}"
    if isinstance(event, ErrorEvent) and UNREADABLE_KEY in event.extra:
        return f"unreadable:{event.extra[UNREADABLE_KEY]}"
    return None


def _known_renderers() -> frozenset[str]:
    folder = core_renderers_dir()
    try:
        return frozenset(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != ".")
    except OSError:
        return frozenset()


class Board:
    """A session's cards in order of arrival (a replaced card keeps its place)."""

    def __init__(self, schemas: PayloadSchemas | None = None) -> None:
        self._schemas = schemas or PayloadSchemas()
        self._renderers = _known_renderers()
        self.session: dict[str, str | None] = {"id": None, "title": None}
        self.theme: str | None = None
        self.cards: OrderedDict[str, Card] = OrderedDict()
        self.older = 0
        self._apps: dict[str, tuple[str, str]] = {}  # nonce -> (card id, the app's HTML)

    # -- the board as a page first sees it ------------------------------------------------

    def reset(self) -> Op:
        """The op a page gets on connecting: every kept card, oldest first."""
        return {
            "op": "reset",
            "session": dict(self.session),
            "theme": self.theme,
            "cards": list(self.cards.values()),
            "older": self.older,
        }

    def load(self, session_id: str | None, title: str | None, events: Any = ()) -> None:
        """Start over for a session (a first load, or the chat switching sessions)."""
        self.session = {"id": session_id, "title": title}
        self.cards.clear()
        self._apps.clear()
        self.older = 0
        for event in events:
            self.apply(event)

    # -- events in, ops out ---------------------------------------------------------------

    def apply(self, event: Event, ts: float | None = None) -> list[Op]:
        """Fold one event into the board; the ops a connected page needs (none for kinds
        that make no card). Never raises for bad plugin data: that becomes an error card."""
        ident = card_id(event)
        if ident is None:
            return []
        now = time.time() if ts is None else ts
        if isinstance(event, ToolCall):
            card = self._card(ident, "result", "progress", event.tool, event.plugin, event.tool)
            card.update(ts=now, input={"arguments": event.args})
            return [self._put(card)]
        if isinstance(event, Progress):
            return self._progress(ident, event, now)
        if isinstance(event, ToolResult):
            return self._result(ident, event, now)
        if isinstance(event, StreamFrame):
            return self._frame(ident, event, now)
        assert isinstance(event, ErrorEvent)
        card = self._card(ident, "result", "error", "Unreadable event", None, None)
        card["ts"] = now
        card["result"] = self._result_of(ident, "error", _error("Unreadable event", event.message))
        card["result"]["isError"] = True
        card["frames"] = 1
        return [self._put(card)]

    def _progress(self, ident: str, event: Progress, now: float) -> list[Op]:
        card = self.cards.get(ident)
        if card is None:  # progress of a call made before the board was loaded
            card = self._card(ident, "result", "progress", event.tool, event.plugin, event.tool)
            card["ts"] = now
        elif card["renderer"] != "progress":
            return []  # the result is in already: a late progress note changes nothing
        payload = {"fraction": event.fraction, "message": event.message}
        return self._update(card, "progress", payload, text=event.message)

    def _result(self, ident: str, event: ToolResult, now: float) -> list[Op]:
        card = self.cards.get(ident)
        if card is None:
            card = self._card(ident, "result", "text", event.tool, event.plugin, event.tool)
            card["ts"] = now
        if event.cancelled:
            reason = event.error or "cancelled"
            card = dict(card, cancelled=reason)
            self.cards[ident] = card
            return [{"op": "cancelled", "id": ident, "reason": reason}]
        title = event.tool or "tool"
        if not event.ok:
            payload = _error(f"{title} failed", event.error or "the call failed")
            return self._replace(card, "error", payload, text=event.text, is_error=True)
        if event.renderer_error:
            payload = _error(f"{title}: its data could not be drawn", event.renderer_error)
            return self._replace(card, "error", payload, text=event.text, is_error=True)
        if event.data is None:
            return self._replace(card, "text", {"text": event.text or ""}, text=event.text)
        return self._replace(card, event.renderer, event.data, text=event.text)

    def _frame(self, ident: str, event: StreamFrame, now: float) -> list[Op]:
        card = self.cards.get(ident)
        if card is None:
            card = self._card(ident, "stream", FALLBACK, event.topic, event.plugin, None)
            card["ts"] = now
        return self._update(card, event.renderer, event.payload, stream={"topic": event.topic})

    # -- building cards and results -------------------------------------------------------

    @staticmethod
    def _card(
        ident: str, kind: str, renderer: str, title: str, plugin: str | None, tool: str | None
    ) -> Card:
        return {
            "id": ident,
            "kind": kind,
            "renderer": renderer,
            "title": title,
            "plugin": plugin,
            "tool": tool,
            "ts": 0.0,
            "input": None,
            "result": None,
            "frames": 0,
        }

    def _replace(
        self,
        card: Card,
        renderer: str | None,
        payload: Any,
        *,
        text: str | None = None,
        is_error: bool = False,
    ) -> list[Op]:
        """A call's final result: the card is sent whole (its renderer may change)."""
        renderer, payload, failed = self._checked(renderer, payload, card["title"])
        self._forget_app(card)
        card = dict(card, renderer=renderer, frames=card["frames"] + 1)
        card.pop("app", None)
        if renderer == APP:
            card["app"], payload = self._app(card["id"], payload)
        card["result"] = self._result_of(
            card["id"], renderer, payload, text=text, frame=card["frames"]
        )
        card["result"]["isError"] = is_error or failed
        return [self._put(card)]

    def _update(
        self,
        card: Card,
        renderer: str | None,
        payload: Any,
        *,
        text: str | None = None,
        stream: dict[str, str] | None = None,
    ) -> list[Op]:
        """A further result for a card (a stream frame, a progress note): a ``result`` op
        while the renderer stays, the whole card when it changes (an error, and back)."""
        renderer, payload, failed = self._checked(renderer, payload, card["title"])
        frame = card["frames"] + 1
        result = self._result_of(
            card["id"], renderer, payload, text=text, frame=frame, stream=stream
        )
        result["isError"] = failed
        same = card["id"] in self.cards and card["renderer"] == renderer and card["frames"] > 0
        card = dict(card, renderer=renderer, frames=frame, result=result)
        if same:
            self.cards[card["id"]] = card
            return [{"op": "result", "id": card["id"], "result": result}]
        return [self._put(card)]

    def _checked(self, renderer: str | None, payload: Any, title: str) -> tuple[str, Any, bool]:
        """(renderer, payload, failed): the data as it can be shown, or an error payload."""
        name = renderer or FALLBACK
        if name not in self._renderers:
            name = FALLBACK
        problem = self._schemas.problem(renderer, payload) if name != FALLBACK else None
        if problem is not None:
            return "error", _error(f"{title}: its data could not be drawn", problem), True
        try:
            size = len(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS))
        except (TypeError, orjson.JSONEncodeError) as exc:
            return "error", _error(f"{title}: its data is not JSON", str(exc)), True
        if size > MAX_PAYLOAD_BYTES:
            message = (
                f"the data is {size / 1048576:.1f} MiB, more than the "
                f"{MAX_PAYLOAD_BYTES // 1048576} MiB a card shows"
            )
            return "error", _error(f"{title}: too big to show", message), True
        return name, payload, False

    @staticmethod
    def _result_of(
        ident: str,
        renderer: str,
        payload: Any,
        *,
        text: str | None = None,
        frame: int = 1,
        stream: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An MCP CallToolResult; a payload that is not a JSON object is wrapped (MCP's
        structuredContent must be one; guest.js unwraps it)."""
        wrapped = not isinstance(payload, dict)
        meta: dict[str, Any] = {
            "deeting/card": ident,
            "deeting/renderer": renderer,
            "deeting/frame": frame,
            "deeting/wrapped": wrapped,
        }
        if stream is not None:
            meta["deeting/stream"] = stream
        text = text or ""
        if len(text) > MAX_PAYLOAD_BYTES // 4:
            text = text[: MAX_PAYLOAD_BYTES // 4] + "…"
        return {
            "content": [{"type": "text", "text": text}],
            "structuredContent": {"value": payload} if wrapped else payload,
            "isError": False,
            "_meta": meta,
        }

    def _app(self, ident: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path of an app's document (a random name of its own, so the document needs
        and learns no token) and the payload the page gets: all but the HTML."""
        nonce = secrets.token_urlsafe(18)
        self._apps[nonce] = (ident, str(payload["html"]))
        return f"/app/{nonce}", {k: v for k, v in payload.items() if k != "html"}

    def app_html(self, nonce: str) -> str | None:
        """The HTML of the app card whose document is ``/app/NONCE``, while it is on the
        board."""
        found = self._apps.get(nonce)
        if found is None or self.cards.get(found[0], {}).get("app") != f"/app/{nonce}":
            return None
        return found[1]

    def _forget_app(self, card: Card) -> None:
        path = card.get("app")
        if isinstance(path, str):
            self._apps.pop(path.rpartition("/")[2], None)

    def _put(self, card: Card) -> Op:
        """Add or replace a card (a replaced one keeps its place); let the oldest go."""
        self.cards[card["id"]] = card
        while len(self.cards) > MAX_CARDS:
            _, gone = self.cards.popitem(last=False)
            self._forget_app(gone)
            self.older += 1
        return {"op": "card", "card": card}


def _error(title: str, message: str) -> dict[str, str]:
    return {"title": title, "message": message or "failed"}
