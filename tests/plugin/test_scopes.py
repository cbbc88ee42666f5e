from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.plugin.scopes import (
    MESSAGES,
    SCOPE_KINDS,
    Scope,
    ScopeError,
    covers,
    expand_path,
    explain,
    parse_scope,
    reads_user_input,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("network", "network"),
        ("network:api.example.com", "network:api.example.com"),
        ("network:API.Example.COM", "network:api.example.com"),
        ("network:*.example.com", "network:*.example.com"),
        ("network:example.com:443", "network:example.com:443"),
        ("network:localhost:0080", "network:localhost:80"),
        ("network:10.0.0.1:8080", "network:10.0.0.1:8080"),
        ("network:[::1]:8080", "network:[::1]:8080"),
        ("network:[2001:db8::1]", "network:[2001:db8::1]"),
        ("filesystem", "filesystem"),
        ("filesystem:read:/data", "filesystem:read:/data"),
        ("filesystem:write:~/notes/", "filesystem:write:~/notes"),
        ("filesystem:read://a/./b/", "filesystem:read:/a/b"),
        ("filesystem:read:~", "filesystem:read:~"),
        ("filesystem:read:/", "filesystem:read:/"),
        ("filesystem:read:/a:b", "filesystem:read:/a:b"),
        ("shell", "shell"),
        (" gpu ", "gpu"),
        ("messages", "messages"),
    ],
)
def test_parse_gives_canonical_text(text: str, canonical: str) -> None:
    scope = parse_scope(text)
    assert str(scope) == canonical
    assert parse_scope(str(scope)) == scope


def test_parts() -> None:
    assert parse_scope("filesystem:write:/x") == Scope("filesystem", "write", "/x")
    assert parse_scope("network:a.io") == Scope("network", target="a.io")
    assert parse_scope("gpu") == Scope("gpu")
    assert SCOPE_KINDS == ("network", "filesystem", "shell", "gpu", "messages")
    assert parse_scope("messages") == MESSAGES == Scope("messages")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("netwrk", "'netwrk' is not a scope (network, filesystem, shell, gpu, messages)"),
        ("Messages", "scope kinds are lowercase: 'messages'"),
        ("messages:user.message", "'messages' takes nothing after it"),
        ("", "'' is not a scope"),
        ("Network", "scope kinds are lowercase: 'network'"),
        ("network:", "'network:' needs a host after 'network:'"),
        ("network:*", "write just 'network'"),
        ("network:exa mple.com", "bad host"),
        ("network:ex_ample.com", "bad host"),
        ("network:-a.com", "bad host"),
        ("network:a..com", "bad host"),
        ("network:a.*.com", "a wildcard may only be a leading '*.'"),
        ("network:host:99999", "bad port"),
        ("network:host:http", "bad port"),
        ("network:::1", "in brackets"),
        ("network:[nope]", "not an IPv6 address"),
        ("filesystem:exec:/x", "filesystem mode must be read or write, not 'exec'"),
        ("filesystem:read", "needs a path"),
        ("filesystem:read:", "needs a path"),
        ("filesystem:read:notes", "filesystem path must be absolute or start with ~"),
        ("filesystem:read:~bob/x", "filesystem path must be absolute or start with ~"),
        ("filesystem:write:/a/../etc", "'..'"),
        ("shell:bash", "'shell' takes nothing after it"),
        ("gpu:0", "'gpu' takes nothing after it"),
    ],
)
def test_parse_refuses_with_a_specific_message(text: str, message: str) -> None:
    with pytest.raises(ScopeError) as caught:
        parse_scope(text)
    assert message in str(caught.value)


def test_scope_error_is_a_value_error() -> None:
    assert issubclass(ScopeError, ValueError)
    with pytest.raises(ScopeError, match="must be a string"):
        parse_scope(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("granted", "wanted", "expected"),
    [
        ("network", "network:api.example.com", True),
        ("network", "network", True),
        ("network:api.example.com", "network", False),
        ("network:*.example.com", "network:api.example.com", True),
        ("network:*.example.com", "network:a.b.example.com", True),
        ("network:*.example.com", "network:example.com", False),
        ("network:*.example.com", "network:evilexample.com", False),
        ("network:api.example.com", "network:*.example.com", False),
        ("network:example.com", "network:example.com:443", True),
        ("network:example.com:443", "network:example.com", False),
        ("network:example.com:443", "network:example.com:8443", False),
        ("network:a.com", "network:b.com", False),
        ("filesystem", "filesystem:write:/etc", True),
        ("filesystem:write:/data", "filesystem:read:/data/x", True),
        ("filesystem:write:/data", "filesystem:write:/data/x/y", True),
        ("filesystem:write:/data", "filesystem:write:/database", False),
        ("filesystem:write:/data", "filesystem", False),
        ("filesystem:read:/data", "filesystem:read:/data/x", True),
        ("filesystem:read:/data", "filesystem:write:/data/x", False),
        ("filesystem:read:/", "filesystem:read:/anything", True),
        ("filesystem:read:~", "filesystem:read:~/notes", True),
        ("filesystem:read:/~", "filesystem:read:~/notes", False),
        ("filesystem:read:/", "filesystem:read:~/notes", False),
        ("shell", "shell", True),
        ("shell", "gpu", False),
        ("network", "filesystem:read:/x", False),
    ],
)
def test_covers(granted: str, wanted: str, expected: bool) -> None:
    assert covers(parse_scope(granted), parse_scope(wanted)) is expected


def test_expand_path(tmp_path: Path) -> None:
    assert expand_path("~", home=tmp_path) == tmp_path
    assert expand_path("~/notes/a", home=tmp_path) == tmp_path / "notes" / "a"
    assert expand_path("/etc/hosts", home=tmp_path) == Path("/etc/hosts")
    assert expand_path("~/x") == Path.home() / "x"


@pytest.mark.parametrize(
    ("pattern", "reads"),
    [
        ("user.message", True),
        ("user.image", True),
        ("user.*", True),
        ("*", True),
        ("*.message", True),
        ("u*", True),
        ("user.messages", False),
        ("system.tick", False),
        ("plugin.*", False),
        ("stream.*", False),
        ("user", False),
    ],
)
def test_which_subscriptions_read_the_users_input(pattern: str, reads: bool) -> None:
    assert reads_user_input(pattern) is reads


def test_messages_is_covered_only_by_itself_and_explained_in_plain_words() -> None:
    assert covers(MESSAGES, MESSAGES)
    assert not any(covers(parse_scope(s), MESSAGES) for s in ("network", "filesystem", "shell"))
    assert not covers(MESSAGES, parse_scope("network"))
    words, risk = explain(MESSAGES)
    assert words.startswith("messages: reads every message you type") and risk == "high"
