"""Outbound requests Tailwinds makes on a caller's, a model's or a flow's behalf: one
policy for where they may go (`addresses`, `urls`), checked when each connection is made
(`client`), and bounded reads of what comes back. SECURITY.md ("Outbound requests") has the why."""

from tailwinds.outbound.addresses import PUBLIC, AddressPolicy, Refused
from tailwinds.outbound.fetch import Fetched, Unreachable, fetch
from tailwinds.outbound.urls import AllowList, parse_target

__all__ = [
    "PUBLIC",
    "AddressPolicy",
    "AllowList",
    "Fetched",
    "Refused",
    "Unreachable",
    "fetch",
    "parse_target",
]
