"""Walking the audit hash chain to find the first event that was altered, removed or inserted out of order.

Each event stores `prev_hash` (the hash of the event before it) and `hash` = SHA-256 over `prev_hash` and its own
canonical content (apps/audit/chain.py); `seq` counts 1, 2, 3... without gaps, and row ids grow with `seq` because
appends are serialised. So, walking in `seq` order:

- an event whose content no longer gives its stored hash was altered;
- a gap in `seq` means events were removed;
- an event whose `prev_hash` is not the hash of the event before it was inserted, or its predecessor was altered and
  re-hashed;
- a row id lower than its predecessor's means a row was inserted later into an old place in the chain.

What a chain cannot show on its own: someone who deletes the newest events leaves a shorter chain that still
verifies. An *anchor* (a head hash recorded earlier and kept outside the database) closes that gap: the chain must
still contain it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from apps.audit.chain import GENESIS_HASH, event_hash, fields_of
from apps.audit.models import AuditEvent

VERIFY_CHUNK_SIZE = 2000


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    anchor_seq: int | None = None


def chain_events(*, chunk_size: int = VERIFY_CHUNK_SIZE) -> Iterable[AuditEvent]:
    """Every stored event in chain order, streamed in chunks so a million events are never all in memory."""
    return AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size)


def _name(event) -> str:
    return f"event #{event.seq} (id {event.pk})"


def _bad(checked: int, seq: int, problem: str, head) -> VerifyResult:
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    return VerifyResult(
        ok=False, checked=checked, first_bad_seq=seq, problem=problem, head_seq=head_seq, head_hash=head_hash
    )


def verify_chain(events: Iterable[AuditEvent] | None = None, *, anchor: str | None = None) -> VerifyResult:
    """Check every event of `events` (all stored events by default), in the order given, which must be seq order.

    `anchor`, if given, is a hash that must still be in the chain (see the module docstring).
    """
    if events is None:
        events = chain_events()
    anchor = anchor.strip().lower() if anchor else None
    anchor_seq = None
    previous = None
    checked = 0
    for event in events:
        checked += 1
        expected_seq = previous.seq + 1 if previous is not None else 1
        expected_prev_hash = previous.hash if previous is not None else GENESIS_HASH
        after = f"#{previous.seq}" if previous is not None else "the start of the chain"

        if event.seq < expected_seq:
            return _bad(
                checked,
                event.seq,
                f"{_name(event)} is out of order: it comes after {after}, expected #{expected_seq}",
                previous,
            )
        if event.seq > expected_seq:
            missing = f"#{expected_seq}" if event.seq == expected_seq + 1 else f"#{expected_seq} to #{event.seq - 1}"
            verb = "is" if event.seq == expected_seq + 1 else "are"
            return _bad(
                checked,
                expected_seq,
                f"event {missing} {verb} missing: {after} is followed by #{event.seq}",
                previous,
            )
        if previous is not None and event.pk is not None and previous.pk is not None and event.pk < previous.pk:
            return _bad(
                checked,
                previous.seq,
                f"{_name(previous)} was inserted out of order: its row was written after that of {_name(event)}",
                previous,
            )
        if event.prev_hash != expected_prev_hash:
            return _bad(
                checked,
                event.seq,
                f"{_name(event)} does not link to {after}: its prev_hash {event.prev_hash[:16]}… is not "
                f"{expected_prev_hash[:16]}… (an event was inserted here, or {after} was altered and re-hashed)",
                previous,
            )
        if event_hash(event.prev_hash, fields_of(event)) != event.hash:
            return _bad(
                checked,
                event.seq,
                f"{_name(event)} was altered: its content no longer matches its hash",
                previous,
            )
        if anchor is not None and event.hash == anchor:
            anchor_seq = event.seq
        previous = event

    head_seq, head_hash = (previous.seq, previous.hash) if previous is not None else (0, GENESIS_HASH)
    if anchor is not None and anchor_seq is None:
        return VerifyResult(
            ok=False,
            checked=checked,
            first_bad_seq=head_seq + 1,
            problem=(
                f"the anchor {anchor} is not in the chain, which ends at #{head_seq}: events after #{head_seq} "
                f"were removed (the tail was truncated), or the anchor was taken from another database"
            ),
            head_seq=head_seq,
            head_hash=head_hash,
        )
    return VerifyResult(ok=True, checked=checked, head_seq=head_seq, head_hash=head_hash, anchor_seq=anchor_seq)
