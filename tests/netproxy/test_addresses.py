"""Which addresses a granted name may lead to (DNS rebinding), as pure functions."""

from __future__ import annotations

import ipaddress

import pytest

from deeting_tui.netproxy.addresses import is_public, unwrap, vet


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 around 192.168.1.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 around 127.0.0.1
        "64:ff9b:1::1",  # local-use NAT64
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo (client 192.0.2.45)
    ],
)
def test_not_public(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:1.1.1.1"])
def test_public(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


def test_unwrap_finds_the_ipv4_inside() -> None:
    assert unwrap(ipaddress.ip_address("::ffff:10.0.0.1")) == ipaddress.ip_address("10.0.0.1")
    assert unwrap(ipaddress.ip_address("64:ff9b::a00:1")) == ipaddress.ip_address("10.0.0.1")
    assert unwrap(ipaddress.ip_address("1.2.3.4")) == ipaddress.ip_address("1.2.3.4")


def test_a_name_keeps_its_public_answers_and_loses_the_rest() -> None:
    usable, why = vet("api.example.com", ["93.184.216.34", "127.0.0.1"], [])
    assert usable == ["93.184.216.34"]
    assert why is not None and "127.0.0.1" in why and "network:127.0.0.1" in why


def test_a_name_that_resolves_only_privately_is_refused() -> None:
    usable, why = vet("rebind.example", ["192.168.1.1", "::1"], [])
    assert usable == []
    assert why is not None and "192.168.1.1" in why


def test_an_address_the_grants_name_literally_may_be_reached() -> None:
    assert vet("printer.lan", ["192.168.1.20"], ["192.168.1.20"]) == (["192.168.1.20"], None)
    assert vet("box", ["::ffff:10.0.0.5"], ["10.0.0.5"]) == (["::ffff:10.0.0.5"], None)
    usable, why = vet("v6.lan", ["fd00::5"], ["fd00::5"])
    assert usable == ["fd00::5"] and why is None
    # The literal grants only that address, not its neighbours.
    usable, why = vet("printer.lan", ["192.168.1.21"], ["192.168.1.20"])
    assert usable == [] and why is not None


def test_localhost_reaches_loopback_and_nothing_else() -> None:
    assert vet("localhost", ["127.0.0.1", "::1"], []) == (["127.0.0.1", "::1"], None)
    assert vet("app.localhost", ["127.0.0.2"], []) == (["127.0.0.2"], None)
    usable, why = vet("localhost", ["192.168.1.1", "93.184.216.34"], [])
    assert usable == [] and why is not None and "not a loopback" in why


def test_zone_ids_are_not_a_way_past() -> None:
    usable, why = vet("link.example", ["fe80::1%eth0"], [])
    assert usable == [] and why is not None
