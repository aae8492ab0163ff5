"""The Redis keys of queue mode, in one place, all under the configured prefix."""

from __future__ import annotations

from dataclasses import dataclass

WORKER_GROUP = "workers"

# how long the facts of a run may stay when nothing ends it properly
RUN_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    @property
    def jobs(self) -> str:
        """The job stream, consumed by the `workers` group."""
        return f"{self.prefix}:jobs"

    @property
    def control(self) -> str:
        """Aborts, read by every worker."""
        return f"{self.prefix}:control"

    def events(self, message_id: str) -> str:
        """One run's events, entry `0-n` holding the frame with `id: n`."""
        return f"{self.prefix}:ev:{message_id}"

    def run(self, message_id: str) -> str:
        """One run's facts: chatflow, chat, grace, session, relay, its job's entry."""
        return f"{self.prefix}:run:{message_id}"

    def attempts(self, message_id: str) -> str:
        """How many times a run's job was claimed from a lost worker (`count_once`)."""
        return f"{self.prefix}:attempts:{message_id}"

    def readers(self, message_id: str) -> str:
        return f"{self.prefix}:readers:{message_id}"

    def aborted(self, message_id: str) -> str:
        return f"{self.prefix}:abort:{message_id}"

    def withdrawn(self, message_id: str) -> str:
        """Set for a day when an abort withdrew the run's job (`job_withdrawal`): its facts
        and stream keep only the retention, and a worker that read the job before may
        begin it later."""
        return f"{self.prefix}:withdrawn:{message_id}"

    def chat(self, chatflow_id: str, chat_id: str) -> str:
        """The runs of one chat not finished yet, for an abort by chat id."""
        return f"{self.prefix}:chat:{chatflow_id}:{chat_id}"

    def turn(self, chatflow_id: str, session_id: str) -> str:
        """The lease of one chat: the message id of the turn that has it."""
        return f"{self.prefix}:turn:{chatflow_id}:{session_id}"

    def turn_line(self, lease: str) -> tuple[str, str, str]:
        """The turns waiting for a chat's lease (`lease`, from `turn`), first come first
        served: their tickets (sorted set, score: ticket), until when each still waits
        (sorted set, score: Redis time in ms), and the last ticket given (counter)."""
        return f"{lease}:line", f"{lease}:alive", f"{lease}:tickets"

    def queued(self, chatflow_id: str) -> str:
        """How many jobs of a chatflow wait or run."""
        return f"{self.prefix}:queued:{chatflow_id}"

    def relay(self, node_id: str) -> str:
        """The frames of the runs an API node queued, as workers write them, for that
        node's reader (see `EventReader`)."""
        return f"{self.prefix}:relay:{node_id}"

    def wake(self, node_id: str) -> str:
        """Written to interrupt an API node's blocking read when it has a new stream."""
        return f"{self.prefix}:wake:{node_id}"


def entry_seq(entry: bytes | str) -> int:
    raw = entry.decode() if isinstance(entry, bytes) else entry
    return int(raw.rsplit("-", 1)[1])


# Stream replies as this project's clients get them (bytes: no `decode_responses`; RESP2,
# see `queue.connect`); redis-py types them as unions of every client's shapes.
StreamEntry = tuple[bytes, dict[bytes, bytes]]
StreamRead = list[tuple[bytes, list[StreamEntry]]]
