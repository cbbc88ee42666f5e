"""The Kernel's state and the methods its parts call on each other, declared once.

A Kernel (kernel.py) is its own lifecycle, listeners and events, plus three mixins: tool
calls (calls.py), the conversation with the assistant (conversation.py) and the wiring of
enabled plugins (wiring.py). Each part reads the state the kernel sets in ``__init__`` and
calls a few methods of another part; it sees them through :class:`KernelState`, so no part
repeats the others' stubs.

A plain base class rather than a ``typing.Protocol`` (as workers/state.py explains): the
state is annotations only and the methods are declared for the type checker alone, so at run
time the MRO finds each part's own definition.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from deeting_tui.errors import Hint

from ..paths import Config, Paths
from .assistant import Assistant, ToolInfo, ToolOutcome
from .bus import EventBus
from .events import (
    ErrorEvent,
    Event,
    Reply,
    ToolCall,
    ToolResult,
    UserMessage,
)
from .permissions import GrantStore
from .plugins.installed import InstalledStore
from .plugins.loader import Loader
from .renderers import PayloadSchemas
from .routing import (
    TriggerTable,
)
from .sessions.journal import SessionJournal
from .sessions.store import SessionStore
from .streams import StreamGate
from .tools import ToolIndex

__all__ = ["KernelState"]


class KernelState:
    """What every part of a Kernel may use of the whole (kernel.py sets or defines it)."""

    paths: Paths
    config: Config
    assistant: Assistant | None
    bus: EventBus
    sessions: SessionStore
    journal: SessionJournal
    streams: StreamGate
    grants: GrantStore
    installed: InstalledStore
    tools: ToolIndex
    loader: Loader
    payload_schemas: PayloadSchemas
    triggers: TriggerTable
    active_session: str | None
    _calls_running: set[str]
    _background: set[asyncio.Task[Any]]

    # The methods the parts call on each other: kernel.py defines error, reply, _emit,
    # _notify, _known_tools and tool_infos; wiring.py _plugin_notice; calls.py call_tool.
    if TYPE_CHECKING:

        def error(
            self,
            session_id: str | None,
            message: str,
            *,
            plugin: str | None = None,
            line: int | None = None,
            input: str | None = None,
            hint: Hint | None = None,
        ) -> None: ...

        def reply(
            self,
            session_id: str,
            text: str,
            *,
            provider: str | None = None,
            model: str | None = None,
            hint: Hint | None = None,
            tool_specs: dict[str, int] | None = None,
        ) -> None: ...

        def _emit(
            self, event: UserMessage | Reply | ToolCall | ToolResult | ErrorEvent
        ) -> None: ...

        def _notify(self, event: Event) -> None: ...

        def _known_tools(self) -> str: ...

        def tool_infos(self) -> list[ToolInfo]: ...

        def _plugin_notice(
            self, plugin: str | None, message: str, hint: Hint | None = None
        ) -> None: ...

        async def call_tool(
            self,
            session_id: str,
            tool: str,
            args: dict[str, Any],
            *,
            reply: bool = False,
            report_errors: bool = True,
        ) -> ToolOutcome: ...
