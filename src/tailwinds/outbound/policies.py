"""The address policy of each kind of destination, from the operator's settings.

- Caller-steered (a URL upsert, the httpRequest tool's URLs, a custom tool's or an MCP
  server's URL, anything a caller overrode): public addresses only, plus the networks in
  TAILWINDS_OUTBOUND_NETWORKS; URL upserts reach every private address too with
  TAILWINDS_INGEST_PRIVATE_URLS.
- Operator-configured services (a Chroma server, embedding servers): private addresses
  too (they usually are), never a cloud metadata, unspecified or multicast address.
"""

from __future__ import annotations

from tailwinds.config import Settings
from tailwinds.outbound.addresses import AddressPolicy, parse_networks


def tool_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(private=False, networks=parse_networks(settings.outbound_networks))


def upsert_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(
        private=settings.ingest_private_urls, networks=parse_networks(settings.outbound_networks)
    )


def service_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(private=True, networks=parse_networks(settings.outbound_networks))
