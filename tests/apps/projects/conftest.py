"""Payloads shared by the projects tests."""

from decimal import Decimal

import pytest

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.projects.models import Project


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Every test here creates several users; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def binary_payload(**overrides) -> dict:
    """A complete, valid binary-classification definition, as a form or serializer would parse it."""
    data = {
        "title": "Churn reduction",
        "business_problem": "Customers cancel without warning; retention offers come too late.",
        "scope": "Consumer contracts in Germany.",
        "problem_type": "binary",
        "primary_metric": "f1",
        "primary_threshold": 0.8,
        "secondary_metrics": [{"metric": "recall", "threshold": 0.7}],
        "baseline_metric_value": 0.6,
        "currency": "EUR",
        "value_per_correct_decision": Decimal("40"),
        "cost_false_positive": Decimal("5"),
        "cost_false_negative": Decimal("120"),
        "expected_yearly_decisions": 100_000,
        "implementation_cost": Decimal("150000"),
        "target_payback_months": 12,
        "expected_correct_rate": 0.9,
        "baseline_correct_rate": 0.7,
        "false_positive_share": 0.5,
        "latency_budget_p99_ms": 200,
        "throughput_per_second": 50,
        "personal_data": True,
        "gdpr": True,
        "hipaa": False,
        "high_risk": False,
        "stakeholders": "Head of retention\nCustomer service",
    }
    data.update(overrides)
    return data


def api_payload(**overrides) -> dict:
    """The same definition as JSON for the API."""
    data = binary_payload(**overrides)
    return {key: str(value) if isinstance(value, Decimal) else value for key, value in data.items()}


@pytest.fixture
def stakeholder(member):
    return member(Role.STAKEHOLDER)


@pytest.fixture
def reviewer(member):
    return member(Role.REVIEWER)


def snapshot() -> tuple:
    """What a denied call must leave unchanged: projects and their states, and the audit trail length."""
    return (
        sorted(Project.objects.values_list("pk", "status", "name", "updated_at")),
        AuditEvent.objects.count(),
    )
