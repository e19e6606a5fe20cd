"""`manage.py seed_demo`: one demo user per role and one demo project, for `make run` and demos. Safe to run again.

- Users `stakeholder`, `scientist`, `reviewer`, `compliance` and `admin`, each with that platform role.
- Their password is DEMO_PASSWORD when it is set (existing demo users get it too), else a random one that is printed
  once, in a box, when the users are created. Existing users keep their password when DEMO_PASSWORD is not set.
- One draft project, a binary churn problem with full ROI targets, filed by `stakeholder`, with `scientist`,
  `reviewer` and `compliance` as members in their roles.
- One dataset in it, `customers`: a generated CSV (seeded, so every demo has the same data) uploaded by `scientist`.
  Its ingestion job is queued like any upload; the worker that `make run` starts turns it into version 1, ready for
  an experiment (an email column is flagged as personal data; gender is there to be marked sensitive).

Every write goes through the services, so each one is audited like any other change.
"""

import csv
import io
import random
import secrets
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.choices import ProjectRole, Role
from apps.accounts.models import Membership, User
from apps.accounts.services import membership_set, user_create, user_password_set
from apps.core.exceptions import ApplicationError
from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create, ingestion_start_upload
from apps.projects.models import Project
from apps.projects.services import project_create

DEMO_USERNAMES = [role.value for role in Role]  # stakeholder, scientist, reviewer, compliance, admin
DEMO_PROJECT_NAME = "Customer churn (demo)"
DEMO_MEMBER_ROLES = [ProjectRole.SCIENTIST, ProjectRole.REVIEWER, ProjectRole.COMPLIANCE]
DEMO_DATASET_NAME = "customers"
DEMO_CUSTOMERS = 2000
DEMO_SEED = 20261122


def demo_definition() -> dict:
    """The demo problem: who will cancel next month, worth acting on only if the offers pay back within a year."""
    return {
        "business_problem": (
            "Subscribers cancel without warning and retention offers reach them too late. Predict who is likely to "
            "cancel next month so the retention team can call them first."
        ),
        "scope": "Consumer subscriptions in the EU; business accounts are out of scope.",
        "problem_type": "binary",
        "primary_metric": "f1",
        "primary_threshold": 0.8,
        "secondary_metrics": [{"metric": "recall", "threshold": 0.7}],
        "baseline_metric_value": 0.55,
        "baseline_description": "Today's rule: call everyone whose usage fell by half over two months.",
        "currency": "EUR",
        "value_per_correct_decision": Decimal("40.00"),
        "cost_false_positive": Decimal("5.00"),
        "cost_false_negative": Decimal("120.00"),
        "expected_yearly_decisions": 100_000,
        "implementation_cost": Decimal("150000.00"),
        "target_payback_months": 12,
        "expected_correct_rate": 0.9,
        "baseline_correct_rate": 0.7,
        "false_positive_share": 0.5,
        "latency_budget_p99_ms": 200,
        "throughput_per_second": 50,
        "data_availability_notes": "Two years of billing, usage and support-ticket history in the warehouse.",
        "personal_data": True,
        "gdpr": True,
        "hipaa": False,
        "high_risk": False,
        "ethical_considerations": "Offers must not depend on age, gender or nationality.",
        "stakeholders": "Head of retention\nCustomer service team\nData protection officer",
    }


def demo_customers_csv(rows: int = DEMO_CUSTOMERS, seed: int = DEMO_SEED) -> bytes:
    """Subscribers and whether they cancelled: churn rises with support calls, short tenure and the basic plan."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["customer_id", "email", "age", "gender", "plan", "tenure_months", "monthly_fee", "support_calls",
         "signup_date", "churned"]
    )  # fmt: skip
    first_signup = date(2020, 1, 1)
    for index in range(1, rows + 1):
        plan = rng.choice(["basic", "basic", "plus", "pro"])
        tenure = rng.randint(1, 72)
        calls = min(int(rng.expovariate(0.6)), 12)
        fee = {"basic": 9.99, "plus": 19.99, "pro": 39.99}[plan] + rng.choice([0, 0, 5])
        risk = 0.35 * calls - 0.04 * tenure + (0.8 if plan == "basic" else 0.0) + rng.gauss(0, 0.5)
        writer.writerow(
            [
                index,
                f"customer{index}@example.com",
                rng.randint(18, 85) if rng.random() > 0.02 else "",  # a few ages are unknown
                rng.choice(["female", "male"]),
                plan,
                tenure,
                f"{fee:.2f}",
                calls,
                (first_signup + timedelta(days=rng.randint(0, 2000))).isoformat(),
                "yes" if risk > 0.3 else "no",
            ]
        )
    return out.getvalue().encode()


class Command(BaseCommand):
    help = (
        "Create one demo user per role (stakeholder, scientist, reviewer, compliance, admin) and one demo project. "
        "Password: DEMO_PASSWORD, else a random one printed once. Idempotent."
    )

    def handle(self, *args, **options):
        fixed_password = settings.DEMO_PASSWORD or ""
        password = fixed_password or secrets.token_urlsafe(12)
        try:
            with transaction.atomic():
                created, reset = self._seed_users(password=password, reset_existing=bool(fixed_password))
                users = {user.username: user for user in User.objects.filter(username__in=DEMO_USERNAMES)}
                project, project_created = self._seed_project(users=users)
            dataset_queued = self._seed_dataset(project=project, scientist=users[Role.SCIENTIST.value])
        except ApplicationError as exc:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc

        self._report(created=created, reset=reset, password=password, random_password=not fixed_password)
        verb = "Created" if project_created else "Kept"
        self.stdout.write(f"{verb} demo project {project.name!r} ({project.pk}).")
        if dataset_queued:
            self.stdout.write(f"Uploaded the demo dataset {DEMO_DATASET_NAME!r}; the worker ingests it once it starts.")

    # --- users -------------------------------------------------------------------------------------------------
    def _seed_users(self, *, password: str, reset_existing: bool) -> tuple[list[str], list[str]]:
        created, reset = [], []
        for role in Role:
            username = role.value
            user = User.objects.filter(username__iexact=username).first()
            if user is None:
                user_create(
                    actor=None, username=username, role=role, password=password, email=f"{username}@example.com"
                )
                created.append(username)
            elif reset_existing and not user.check_password(password):
                user_password_set(actor=None, user=user, password=password)
                reset.append(username)
        return created, reset

    def _report(self, *, created: list[str], reset: list[str], password: str, random_password: bool) -> None:
        if created and random_password:
            self._print_box(
                [
                    "Demo users created. Their password is shown only now:",
                    "",
                    f"Password: {password}",
                    "Usernames: " + ", ".join(created),
                    "",
                    "Set DEMO_PASSWORD to choose the password yourself.",
                ]
            )
        elif created:
            self.stdout.write(f"Created demo users {', '.join(created)} with the password from DEMO_PASSWORD.")
        if reset:
            self.stdout.write(f"Set the password of {', '.join(reset)} to DEMO_PASSWORD.")
        kept = [name for name in DEMO_USERNAMES if name not in created and name not in reset]
        if kept:
            self.stdout.write(f"Demo users {', '.join(kept)} already exist; their passwords are unchanged.")

    def _print_box(self, lines: list[str]) -> None:
        width = max(len(line) for line in lines)
        self.stdout.write("+" + "-" * (width + 2) + "+")
        for line in lines:
            self.stdout.write(f"| {line.ljust(width)} |")
        self.stdout.write("+" + "-" * (width + 2) + "+")

    # --- project -----------------------------------------------------------------------------------------------
    def _seed_project(self, *, users: dict[str, User]) -> tuple[Project, bool]:
        project = Project.objects.filter(name=DEMO_PROJECT_NAME).first()
        created = project is None
        if created:
            project = self._create_project(creator=users[Role.STAKEHOLDER.value])
        existing = set(Membership.objects.filter(project=project).values_list("user__username", flat=True))
        for role in DEMO_MEMBER_ROLES:
            if role.value not in existing:
                membership_set(actor=None, project=project, user=users[role.value], role=role)
        return project, created

    # --- dataset -----------------------------------------------------------------------------------------------
    def _seed_dataset(self, *, project: Project, scientist: User) -> bool:
        """Upload the demo customers once (like a user would: the ingestion job is dispatched after commit)."""
        if Dataset.objects.filter(project=project, name=DEMO_DATASET_NAME).exists():
            return False
        dataset = dataset_create(
            project=project,
            actor=scientist,
            name=DEMO_DATASET_NAME,
            description="Generated subscribers with their plan, usage and whether they cancelled (demo data).",
        )
        data = demo_customers_csv()
        ingestion_start_upload(
            dataset=dataset, actor=scientist, stream=io.BytesIO(data), display_name="customers.csv", size=len(data)
        )
        return True

    def _create_project(self, *, creator: User) -> Project:
        return project_create(actor=creator, data={"title": DEMO_PROJECT_NAME, **demo_definition()})
