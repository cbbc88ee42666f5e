"""Which provider answers, and why (flag, then config, then environment)."""

from __future__ import annotations

import pytest

from deeting_tui.llm.select import DEFAULT_MODELS, Choice, choose


@pytest.mark.parametrize(
    ("flag", "config", "env", "expected"),
    [
        (None, None, {}, ("offline", None, "no provider configured")),
        (None, None, {"ANTHROPIC_API_KEY": "k"}, ("anthropic", None, "ANTHROPIC_API_KEY is set")),
        (None, None, {"OPENAI_BASE_URL": "http://x"}, ("openai", None, "OPENAI_BASE_URL is set")),
        (None, None, {"OPENAI_API_KEY": "k"}, ("openai", None, "OPENAI_API_KEY is set")),
        (
            None,
            None,
            {"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"},
            ("anthropic", None, "ANTHROPIC_API_KEY is set"),
        ),
        (None, "openai", {"ANTHROPIC_API_KEY": "k"}, ("openai", None, "config.toml")),
        ("offline", "openai", {"ANTHROPIC_API_KEY": "k"}, ("offline", None, "--provider")),
    ],
)
def test_flag_then_config_then_environment(
    flag: str | None, config: str | None, env: dict[str, str], expected: tuple[str, None, str]
) -> None:
    choice = choose(flag, None, config, None, env)
    provider, _model, reason = expected
    assert (choice.provider, choice.reason) == (provider, reason)
    assert choice.model == DEFAULT_MODELS.get(provider)


def test_anthropic_auth_token_selects_anthropic_as_the_sdk_honours_it() -> None:
    choice = choose(None, None, None, None, {"ANTHROPIC_AUTH_TOKEN": "t"})
    assert (choice.provider, choice.reason) == ("anthropic", "ANTHROPIC_AUTH_TOKEN is set")
    both = choose(None, None, None, None, {"ANTHROPIC_AUTH_TOKEN": "t", "OPENAI_API_KEY": "k"})
    assert both.provider == "anthropic"


def test_model_from_flag_then_config_then_default() -> None:
    assert choose("openai", "llama3", None, "qwen", {}).model == "llama3"
    assert choose("openai", None, None, "qwen", {}).model == "qwen"
    assert choose("anthropic", None, None, None, {}).model == DEFAULT_MODELS["anthropic"]
    assert choose(None, "ignored", None, None, {}).model is None  # offline has no model
    assert Choice("openai", "m", "why").describe() == "openai, model m (why)"


def test_unknown_provider_in_config_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider 'gpt'"):
        choose(None, None, "gpt", None, {})


def test_default_models_match_the_providers() -> None:
    from deeting_tui.llm import anthropic_provider, openai_provider

    assert DEFAULT_MODELS == {
        "anthropic": anthropic_provider.DEFAULT_MODEL,
        "openai": openai_provider.DEFAULT_MODEL,
    }
