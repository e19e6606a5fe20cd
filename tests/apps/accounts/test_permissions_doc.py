"""docs/permissions.md shows the policy exactly as apps/accounts/permissions.py decides it."""

from pathlib import Path

from django.conf import settings

from apps.accounts.permissions import POLICY, policy_markdown_table

DOC = Path(settings.BASE_DIR) / "docs" / "permissions.md"


def test_permissions_doc_contains_the_generated_policy_table_verbatim():
    assert policy_markdown_table() in DOC.read_text(encoding="utf-8")


def test_generated_table_has_one_row_per_action():
    rows = [line for line in policy_markdown_table().splitlines() if line.startswith("| `")]

    assert [row.split("`")[1] for row in rows] == [action.value for action in POLICY]
