import pytest

from apps.accounts.choices import Role
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def platform_compliance(db):
    """A compliance officer by platform role: sees and exports every event."""
    return UserFactory(role=Role.COMPLIANCE, username="compliance-officer")


@pytest.fixture
def project_compliance(db, project):
    """A data scientist by platform role who is the compliance member of `project` only."""
    user = UserFactory(role=Role.SCIENTIST, username="project-compliance")
    MembershipFactory(user=user, project=project, role=Role.COMPLIANCE)
    return user


@pytest.fixture
def other_project(project_factory):
    return project_factory(name="Fraud scoring")
