"""The address table: every IPv4/IPv6 form a connection may end up at, judged for a
caller's request (public only) and for an operator-configured service (private too)."""

from __future__ import annotations

import pytest

from tailwinds.outbound.addresses import PUBLIC, AddressPolicy, Refused, parse_networks

SERVICE = AddressPolicy(private=True)

# (address, allowed for a caller, allowed for a configured service)
TABLE = [
    ("93.184.216.34", True, True),
    ("2606:4700::1111", True, True),
    ("127.0.0.1", False, True),
    ("127.1.2.3", False, True),
    ("10.1.2.3", False, True),
    ("172.16.0.1", False, True),
    ("192.168.1.1", False, True),
    ("100.64.0.1", False, True),  # carrier-grade NAT
    ("169.254.1.1", False, True),  # link-local
    ("::1", False, True),
    ("fe80::1%eth0", False, True),
    ("fc00::1", False, True),  # unique-local
    ("fd12:3456::1", False, True),
    ("fec0::1", False, True),  # site-local (deprecated)
    ("::ffff:127.0.0.1", False, True),  # IPv4-mapped
    ("::ffff:8.8.8.8", True, True),
    ("::127.0.0.1", False, True),  # IPv4-compatible
    ("::ffff:0:127.0.0.1", False, True),  # SIIT-translated
    ("64:ff9b::7f00:1", False, True),  # NAT64 of 127.0.0.1
    ("64:ff9b::808:808", True, True),  # NAT64 of 8.8.8.8
    ("64:ff9b:1::7f00:1", False, True),  # local-use NAT64
    ("2002:7f00:1::1", False, True),  # 6to4 of 127.0.0.1
    ("2002:a00:1::1", False, True),  # 6to4 of 10.0.0.1
    ("2002:808:808::1", True, True),  # 6to4 of 8.8.8.8
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False, True),  # Teredo
    # never, whoever asks
    ("169.254.169.254", False, False),
    ("fd00:ec2::254", False, False),
    ("::ffff:169.254.169.254", False, False),
    ("64:ff9b::a9fe:a9fe", False, False),
    ("100.100.100.200", False, False),
    ("168.63.129.16", False, False),
    ("0.0.0.0", False, False),  # reaches this host on Linux
    ("0.1.2.3", False, False),
    ("::", False, False),
    ("224.0.0.1", False, False),
    ("ff02::1", False, False),
    ("255.255.255.255", False, False),
]


@pytest.mark.parametrize(("address", "for_caller", "for_service"), TABLE)
def test_address_table(address: str, for_caller: bool, for_service: bool) -> None:
    assert (PUBLIC.refusal(address) is None) is for_caller, PUBLIC.refusal(address)
    assert (SERVICE.refusal(address) is None) is for_service, SERVICE.refusal(address)


def test_a_refusal_names_the_address_it_reaches() -> None:
    with pytest.raises(Refused, match=r"reaches 127\.0\.0\.1\) is a loopback address"):
        PUBLIC.check("::ffff:127.0.0.1")
    assert PUBLIC.refusal("not-an-address") == "'not-an-address' is not a numeric address"


def test_operator_networks_open_private_ones_and_metadata_only_by_name() -> None:
    policy = AddressPolicy(networks=parse_networks("10.0.0.0/8, 127.0.0.1"))
    assert policy.refusal("10.9.8.7") is None
    assert policy.refusal("::ffff:10.9.8.7") is None
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("127.0.0.2") is not None
    assert policy.refusal("169.254.169.254") is not None
    named = AddressPolicy(networks=parse_networks("169.254.169.254"))
    assert named.refusal("169.254.169.254") is None


def test_parse_networks_names_a_bad_entry() -> None:
    with pytest.raises(ValueError, match="'intranet'"):
        parse_networks("10.0.0.0/8,intranet")
    assert parse_networks(" , ") == ()


def test_a_bad_networks_setting_stops_the_start() -> None:
    from tailwinds.config import Settings

    with pytest.raises(ValueError, match="TAILWINDS_OUTBOUND_NETWORKS: 'wiki'"):
        Settings.from_env({"TAILWINDS_OUTBOUND_NETWORKS": "10.0.0.0/8,wiki"})
    settings = Settings.from_env({"TAILWINDS_OUTBOUND_NETWORKS": "10.0.0.0/8"})
    assert settings.outbound_networks == "10.0.0.0/8"
