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
