"""Which webhook destinations the SSRF guard lets through (serving/alerts/egress.py): address
classes, the operator's allow options, and the error a refused watch gets. IP literals only:
nothing here resolves a name."""

from __future__ import annotations

import ipaddress

import pytest

from eventvstream.errors import EvsError
from eventvstream.serving.alerts.egress import CODE, TargetRefused, WebhookPolicy, is_public

NON_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # the cloud metadata service
    "100.64.0.1",  # shared address space (CGNAT)
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


def same(found: list[str], address: str) -> bool:
    return [ipaddress.ip_address(a) for a in found] == [ipaddress.ip_address(address)]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(TargetRefused):
        WebhookPolicy().resolve(address, 80)
    with pytest.raises(EvsError) as refused:
        host = f"[{address}]" if ":" in address else address
        WebhookPolicy().check_url(f"http://{host}:8080/hook")
    assert refused.value.code == CODE == "webhook_url_forbidden"
    assert "webhook_allow_private" in refused.value.message


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
    assert same(WebhookPolicy().resolve(address, 443), address)
    host = f"[{address}]" if ":" in address else address
    WebhookPolicy().check_url(f"https://{host}/hook")  # no error


def test_the_allow_list_takes_addresses_networks_and_names() -> None:
    policy = WebhookPolicy(allow_hosts=["127.0.0.1", "10.5.0.0/16", "Hooks.Internal."])
    assert policy.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    assert same(policy.resolve("::ffff:127.0.0.1", 80), "::ffff:127.0.0.1")  # the same address
    assert policy.resolve("10.5.200.1", 80) == ["10.5.200.1"]
    assert policy.resolve("hooks.internal", 80) == ["hooks.internal"]  # listed: not resolved
    for still_refused in ("127.0.0.2", "10.6.0.1", "169.254.169.254", "::1"):
        with pytest.raises(TargetRefused):
            policy.resolve(still_refused, 80)


def test_allow_private_lets_everything_through() -> None:
    policy = WebhookPolicy(allow_private=True)
    for address in NON_PUBLIC:
        assert policy.resolve(address, 80) == [address]
    policy.check_url("http://127.0.0.1:9/h")


def test_decimal_and_hex_spellings_of_loopback_are_not_a_way_around() -> None:
    """``http://2130706433/`` is 127.0.0.1 to the C resolver; it is a name to ipaddress, so the
    policy resolves it and sees loopback (getaddrinfo parses numeric hosts without DNS)."""
    for host in ("2130706433", "0x7f.0.0.1", "017700000001"):
        with pytest.raises(EvsError) as refused:
            WebhookPolicy().check_url(f"http://{host}:8080/")
        assert refused.value.code == CODE
