from django.core.management.base import BaseCommand, CommandError

from apps.audit.verify import VERIFY_CHUNK_SIZE, chain_events, verify_chain


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain in seq order and recompute every hash. Exits 0 and prints the event count and the "
        "head hash when the chain is intact; exits 1 naming the first event that was altered, removed or inserted "
        "out of order."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            metavar="HASH",
            help=(
                "A head hash printed by an earlier run and kept outside the database (a ticket, a signed e-mail, "
                "another system). A hash chain proves only that nothing changed between its first and its last "
                "event: deleting the newest events leaves a shorter chain that still verifies. With --anchor the "
                "chain must also still contain that hash, which proves nothing recorded up to then was cut off."
            ),
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=VERIFY_CHUNK_SIZE,
            help="Events read from the database at a time (memory stays bounded whatever the chain length).",
        )

    def handle(self, *args, anchor=None, chunk_size=VERIFY_CHUNK_SIZE, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        result = verify_chain(chain_events(chunk_size=chunk_size), anchor=anchor)
        if not result.ok:
            raise CommandError(f"Audit chain BROKEN after {result.checked} events checked: {result.problem}")
        self.stdout.write(f"Audit chain OK: {result.checked} events, head {result.head_hash}")
        if result.anchor_seq is not None:
            self.stdout.write(f"Anchor found at event #{result.anchor_seq}")
