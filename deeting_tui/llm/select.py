"""Which model answers: ``--provider``, then config.toml, then the environment, else offline.

The environment rule follows the SDKs' own variables (README.md, "Talking to a model"):
``ANTHROPIC_API_KEY``, or ``ANTHROPIC_AUTH_TOKEN`` (the bearer token the Anthropic SDK honours just
as well), selects Anthropic; ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` selects an OpenAI-compatible
server. Nothing here imports a provider's SDK: that happens when the provider is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deeting_tui.paths import PROVIDERS

#: Each provider module's DEFAULT_MODEL (a test keeps them equal), without importing them:
#: --help reads this, and httpx or an SDK would slow every start.
DEFAULT_MODELS = {"anthropic": "claude-sonnet-5-5", "openai": "gpt-4o-mini"}


@dataclass(frozen=True)
class Choice:
    provider: str
    model: str | None
    reason: str  # why this provider: shown by --help

    def describe(self) -> str:
        model = f", model {self.model}" if self.model else ""
        return f"{self.provider}{model} ({self.reason})"


def choose(
    flag_provider: str | None,
    flag_model: str | None,
    config_provider: str | None,
    config_model: str | None,
    env: Mapping[str, str] | None = None,
) -> Choice:
    env = os.environ if env is None else env
    if flag_provider:
        provider, reason = flag_provider, "--provider"
    elif config_provider:
        provider, reason = config_provider, "config.toml"
    elif env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_AUTH_TOKEN"):
        which = "ANTHROPIC_API_KEY" if env.get("ANTHROPIC_API_KEY") else "ANTHROPIC_AUTH_TOKEN"
        provider, reason = "anthropic", f"{which} is set"
    elif env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_KEY"):
        which = "OPENAI_BASE_URL" if env.get("OPENAI_BASE_URL") else "OPENAI_API_KEY"
        provider, reason = "openai", f"{which} is set"
    else:
        provider, reason = "offline", "no provider configured"
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})")
    if provider == "offline":
        return Choice(provider, None, reason)
    model = flag_model or config_model or DEFAULT_MODELS[provider]
    return Choice(provider, model, reason)


def import_provider(choice: Choice) -> None:
    """Import what :func:`build_assistant` will for ``choice``, without building anything:
    the chat does it in a thread after its first frame (an SDK takes a few hundred ms)."""
    if choice.provider == "offline":
        from . import offline  # noqa: F401
    elif choice.provider == "anthropic":
        from . import agent, anthropic_provider  # noqa: F401
    else:
        from . import agent, openai_provider  # noqa: F401


def build_assistant(choice: Choice) -> Any:
    """The kernel's Assistant for this choice (providers imported only now)."""
    if choice.provider == "offline":
        from .offline import OfflineAssistant

        return OfflineAssistant()
    from .agent import LLMAssistant

    assert choice.model is not None
    if choice.provider == "anthropic":
        from .anthropic_provider import AnthropicProvider

        return LLMAssistant(AnthropicProvider(choice.model))
    from .openai_provider import OpenAIProvider

    return LLMAssistant(OpenAIProvider(choice.model))
