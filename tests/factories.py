import factory
from factory.django import DjangoModelFactory

from apps.accounts.choices import Role
from apps.accounts.models import Membership, User
from apps.projects.choices import Metric, ProblemType
from apps.projects.models import ProblemDefinition, Project

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = Role.SCIENTIST
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Churn reduction {n}")
    created_by = factory.SubFactory(UserFactory, role=Role.STAKEHOLDER)


class ProblemDefinitionFactory(DjangoModelFactory):
    class Meta:
        model = ProblemDefinition

    project = factory.SubFactory(ProjectFactory)
    business_problem = "Customers cancel without warning; retention offers come too late."
    problem_type = ProblemType.BINARY
    primary_metric = Metric.F1
    primary_threshold = 0.8
    value_per_correct_decision = 40
    cost_false_positive = 5
    cost_false_negative = 120
    expected_yearly_decisions = 100_000
    implementation_cost = 150_000
    target_payback_months = 12
    expected_correct_rate = 0.9
    baseline_correct_rate = 0.7
    false_positive_share = 0.5
    latency_budget_p99_ms = 200


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = Role.SCIENTIST
