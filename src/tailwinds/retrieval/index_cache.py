"""The in-memory indexes of the document stores searched last: at most `max_entries`, the
least recently used one dropped first (it is built again from the database when its store
is searched next)."""

from __future__ import annotations

from collections import OrderedDict

from tailwinds.retrieval.index import StoreIndex


class IndexCache:
    def __init__(self, max_entries: int) -> None:
        """`max_entries` >= 1: how many stores' indexes stay in memory."""
        if max_entries < 1:
            raise ValueError("an index cache holds at least one store's index")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, StoreIndex] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, store_id: object) -> bool:
        return store_id in self._entries

    def get(self, store_id: str) -> StoreIndex | None:
        """The store's index, now the most recently used one; None when not held."""
        index = self._entries.get(store_id)
        if index is not None:
            self._entries.move_to_end(store_id)
        return index

    def put(self, store_id: str, index: StoreIndex) -> None:
        """Hold `index` (replacing the store's older one), dropping the least recently used
        ones beyond `max_entries`."""
        self._entries[store_id] = index
        self._entries.move_to_end(store_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, store_id: str, default: StoreIndex | None = None) -> StoreIndex | None:
        return self._entries.pop(store_id, default)
