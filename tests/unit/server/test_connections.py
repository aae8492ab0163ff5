"""The connection table: caps in all and per address, and who makes room."""

from __future__ import annotations

from tailwinds.server.connections import ConnectionTable, uncapped_addresses


class FakeConnection:
    def __init__(self, table: ConnectionTable, address: str) -> None:
        self.table = table
        self.client_address = address
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True
        self.table.release(self)


def test_at_the_cap_the_oldest_waiting_connection_makes_room() -> None:
    table = ConnectionTable(3, 0, lambda _: False)
    first, second, third = (FakeConnection(table, "a") for _ in range(3))
    for conn in (first, second, third):
        assert table.admit(conn)
    table.busy(first)  # running a request: never evicted
    newcomer = FakeConnection(table, "b")
    assert table.admit(newcomer)
    assert (first.evicted, second.evicted, third.evicted) == (False, True, False)
    assert table.total == 3


def test_a_connection_idle_again_goes_to_the_back_of_the_line() -> None:
    table = ConnectionTable(2, 0, lambda _: False)
    first, second = FakeConnection(table, "a"), FakeConnection(table, "a")
    table.admit(first)
    table.admit(second)
    table.busy(first)
    table.idle(first)  # its answer is done: now the newest waiting
    assert table.admit(FakeConnection(table, "b"))
    assert second.evicted and not first.evicted


def test_when_every_connection_is_busy_the_new_one_is_refused() -> None:
    table = ConnectionTable(2, 0, lambda _: False)
    for _ in range(2):
        conn = FakeConnection(table, "a")
        table.admit(conn)
        table.busy(conn)
    assert not table.admit(FakeConnection(table, "b"))
    assert table.total == 2


def test_per_address_cap_evicts_only_that_address() -> None:
    table = ConnectionTable(100, 2, lambda _: False)
    other = FakeConnection(table, "b")
    table.admit(other)
    mine = [FakeConnection(table, "a") for _ in range(2)]
    for conn in mine:
        table.admit(conn)
    assert table.admit(FakeConnection(table, "a"))
    assert mine[0].evicted and not other.evicted
    assert table.per_client == {"a": 2, "b": 1}


def test_per_address_cap_refuses_when_that_address_is_all_busy() -> None:
    table = ConnectionTable(100, 1, lambda _: False)
    busy = FakeConnection(table, "a")
    table.admit(busy)
    table.busy(busy)
    assert not table.admit(FakeConnection(table, "a"))
    assert table.admit(FakeConnection(table, "b"))


def test_uncapped_addresses_have_no_per_address_cap() -> None:
    table = ConnectionTable(100, 1, uncapped_addresses("10.1.0.0/16"))
    for address in ("127.0.0.1", "127.0.0.1", "::1", "::1", "10.1.2.3", "10.1.2.3"):
        assert table.admit(FakeConnection(table, address))
    assert table.per_client["127.0.0.1"] == 2


def test_uncapped_addresses() -> None:
    uncapped = uncapped_addresses("192.0.2.7, 10.0.0.0/8")
    assert uncapped("127.0.0.1") and uncapped("::1")
    assert uncapped("192.0.2.7") and uncapped("10.200.0.1")
    assert not uncapped("192.0.2.8") and not uncapped("")
    assert uncapped_addresses("*")("203.0.113.9")


def test_release_uncounts() -> None:
    table = ConnectionTable(1, 1, lambda _: False)
    conn = FakeConnection(table, "a")
    table.admit(conn)
    table.release(conn)
    assert (table.total, table.per_client, table.waiting) == (0, {}, {})


def test_the_default_cap_follows_the_open_files_limit() -> None:
    import resource

    from tailwinds.server.http_protocol import FD_RESERVE, connection_cap

    assert connection_cap(123) == 123
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = connection_cap(0)  # raises the soft limit toward the hard one
    raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raised >= soft
    assert cap == max(16, (min(raised, 65536) - FD_RESERVE) // 2)


def test_a_client_is_an_ipv4_address_or_an_ipv6_slash_64() -> None:
    from tailwinds.server.connections import client_key

    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"  # IPv4-mapped
    assert client_key("203.0.113.7", prefix_v4=24) == "203.0.113.0/24"
    assert client_key("2001:db8:1:2::1", prefix_v6=128) == "2001:db8:1:2::1"
    assert client_key("2001:db8:1:2::1", prefix_v6=48) == "2001:db8:1::/48"
    assert client_key("") == ""  # a Unix socket's peer


def test_addresses_of_one_ipv6_slash_64_share_the_per_client_cap() -> None:
    table = ConnectionTable(100, 2, lambda _: False)
    mine = [FakeConnection(table, f"2001:db8:0:7::{i}") for i in (1, 2)]
    for conn in mine:
        assert table.admit(conn)
    neighbour = FakeConnection(table, "2001:db8:0:8::1")  # another /64: another client
    assert table.admit(neighbour)
    table.busy(mine[1])
    assert table.admit(FakeConnection(table, "2001:db8:0:7::99"))  # a fresh address
    assert mine[0].evicted and not mine[1].evicted and not neighbour.evicted
    assert table.per_client == {"2001:db8:0:7::/64": 2, "2001:db8:0:8::/64": 1}
    busy_too = next(c for c in table.waiting if c.client_address == "2001:db8:0:7::99")
    table.busy(busy_too)
    assert not table.admit(FakeConnection(table, "2001:db8:0:7::abcd"))


def test_a_connection_still_sending_its_body_is_evictable_until_its_request_is_complete() -> None:
    """The protocol calls `busy` only once a request's message is complete: before that
    (head read, body trickling) the connection stays in line from where it was."""
    table = ConnectionTable(2, 0, lambda _: False)
    slow_body, answering = FakeConnection(table, "a"), FakeConnection(table, "a")
    table.admit(slow_body)  # its head came, its body has not: never made busy
    table.admit(answering)
    table.busy(answering)  # a complete request, its answer (a stream) still going
    assert table.admit(FakeConnection(table, "b"))
    assert slow_body.evicted and not answering.evicted


def test_release_twice_uncounts_once() -> None:
    table = ConnectionTable(2, 0, lambda _: False)
    conn = FakeConnection(table, "a")
    table.admit(conn)
    table.release(conn)
    table.release(conn)
    assert (table.total, table.per_client) == (0, {})
