"""Datasets selectors: visibility, annotations, comparisons, effective columns, connection DSNs, query counts."""

import pytest
from django.http import Http404

from apps.accounts.choices import Role
from apps.core.crypto import encrypt_text
from apps.datasets import selectors, services
from apps.datasets.models import DataConnection
from tests.workers.tasks.dataset_helpers import make_version, queued_job

pytestmark = pytest.mark.django_db


def names(datasets) -> list[str]:
    return [d.name for d in datasets]


def test_members_compliance_and_admins_see_a_projects_datasets_outsiders_do_not(
    dataset, project, member, outsider, admin_user, make_user
):
    compliance_elsewhere = make_user(Role.COMPLIANCE)

    assert names(selectors.dataset_list(actor=member(Role.REVIEWER))) == ["churn"]
    assert names(selectors.dataset_list(actor=member(Role.STAKEHOLDER))) == ["churn"]
    assert names(selectors.dataset_list(actor=compliance_elsewhere)) == ["churn"]
    assert names(selectors.dataset_list(actor=admin_user)) == ["churn"]
    assert names(selectors.dataset_list(actor=outsider)) == []
    with pytest.raises(Http404):
        selectors.dataset_get(actor=outsider, pk=dataset.pk)


def test_inactive_user_sees_nothing(dataset, scientist):
    scientist.is_active = False
    assert names(selectors.dataset_list(actor=scientist)) == []


def test_dataset_list_annotates_the_latest_version_and_the_count(dataset, project, scientist):
    make_version(dataset, 1)
    make_version(dataset, 2)
    empty = services.dataset_create(project=project, actor=scientist, name="audit-log")

    rows = {d.name: (d.latest_version_number, d.version_count) for d in selectors.dataset_list(actor=scientist)}

    assert rows == {"churn": (2, 2), empty.name: (None, 0)}


def test_dataset_list_filters_by_project_and_name(dataset, scientist, project_factory, admin_user):
    other = project_factory()
    services.dataset_create(project=other, actor=admin_user, name="churn-eu")

    assert names(selectors.dataset_list(actor=admin_user, filters={"search": "EU"})) == ["churn-eu"]
    assert names(selectors.dataset_list(actor=admin_user, filters={"project": str(other.pk)})) == ["churn-eu"]
    assert names(selectors.dataset_list(actor=admin_user, project=dataset.project)) == ["churn"]


def test_dataset_list_runs_one_query_however_many_datasets(project, scientist, django_assert_num_queries):
    for index in range(5):
        dataset = services.dataset_create(project=project, actor=scientist, name=f"set-{index}")
        make_version(dataset, 1)
    with django_assert_num_queries(1):  # visibility is a subquery, project and creator are joined
        rows = [
            (d.name, d.project.name, d.created_by.username, d.latest_version_number)
            for d in selectors.dataset_list(actor=scientist)
        ]
    assert len(rows) == 5


def test_versions_are_listed_newest_first_and_got_by_number(dataset):
    make_version(dataset, 1)
    make_version(dataset, 2)

    assert [v.number for v in selectors.dataset_version_list(dataset=dataset)] == [2, 1]
    assert selectors.dataset_version_get(dataset=dataset, number="2").number == 2
    with pytest.raises(Http404):
        selectors.dataset_version_get(dataset=dataset, number=3)
    with pytest.raises(Http404):
        selectors.dataset_version_get(dataset=dataset, number="x")


def test_ingestion_jobs_follow_dataset_visibility(dataset, scientist, outsider, member):
    job = queued_job(dataset, scientist)

    assert list(selectors.ingestion_job_list(actor=member(Role.REVIEWER), dataset=dataset)) == [job]
    assert list(selectors.ingestion_job_list(actor=outsider)) == []
    assert selectors.ingestion_job_get(actor=scientist, pk=job.pk) == job
    with pytest.raises(Http404):
        selectors.ingestion_job_get(actor=outsider, pk=job.pk)
    with pytest.raises(Http404):
        selectors.ingestion_job_get(actor=scientist, pk="not-a-uuid")


def test_version_compare_names_schema_changes_and_row_count_change(dataset):
    old = make_version(
        dataset,
        1,
        rows=100,
        schema=[
            {"name": "id", "dtype": "int64", "nullable": False, "semantic_type": "id"},
            {"name": "age", "dtype": "int64", "nullable": True, "semantic_type": "numeric"},
            {"name": "fax", "dtype": "string", "nullable": True, "semantic_type": "text"},
        ],
    )
    new = make_version(
        dataset,
        2,
        rows=130,
        schema=[
            {"name": "id", "dtype": "int64", "nullable": False, "semantic_type": "id"},
            {"name": "age", "dtype": "float64", "nullable": True, "semantic_type": "numeric"},
            {"name": "email", "dtype": "string", "nullable": True, "semantic_type": "text"},
        ],
    )

    assert selectors.version_compare(old=old, new=new) == {
        "old": 1,
        "new": 2,
        "added": ["email"],
        "removed": ["fax"],
        "type_changed": [{"name": "age", "old": "int64", "new": "float64"}],
        "unchanged": 1,
        "row_count": {"old": 100, "new": 130, "delta": 30},
        "column_count": {"old": 3, "new": 3, "delta": 0},
    }


def test_effective_columns_carry_schema_current_marks_and_pii_flags(dataset, scientist):
    version = make_version(dataset, 1)
    services.dataset_column_marks_set(
        dataset=dataset, actor=scientist, marks={"age": {"sensitive": True}, "email": {"excluded": True}}
    )
    version.refresh_from_db()

    columns = selectors.version_effective_columns(version=version)

    assert columns == [
        {
            "name": "customer_id",
            "dtype": "int64",
            "nullable": False,
            "semantic_type": "id",
            "personal": False,
            "sensitive": False,
            "excluded": False,
            "pii": [],
        },
        {
            "name": "email",
            "dtype": "string",
            "nullable": True,
            "semantic_type": "text",
            "personal": False,
            "sensitive": False,
            "excluded": True,
            "pii": [
                {
                    "column": "email",
                    "kind": "email",
                    "share": 1.0,
                    "reason": "100% of sampled values look like e-mails",
                }
            ],
        },
        {
            "name": "age",
            "dtype": "int64",
            "nullable": True,
            "semantic_type": "numeric",
            "personal": False,
            "sensitive": True,
            "excluded": False,
            "pii": [],
        },
    ]


def test_connections_are_listed_only_for_those_who_manage_them(project, scientist, member):
    services.connection_create(
        project=project,
        actor=scientist,
        name="warehouse",
        host="db",
        port=5432,
        database="sales",
        username="reader",
        password="pw",
    )
    assert [c.name for c in selectors.connection_list(actor=scientist, project=project)] == ["warehouse"]
    assert list(selectors.connection_list(actor=member(Role.REVIEWER), project=project)) == []


def test_connection_dsn_decrypts_and_quotes_every_part(project, scientist):
    connection = DataConnection.objects.create(
        project=project,
        name="w",
        host="db.internal",
        port=6543,
        database="sales/eu",
        username="read@er",
        encrypted_password=encrypt_text("p@ss:w/rd?"),
        created_by=scientist,
    )

    assert selectors.connection_dsn(connection=connection) == (
        "postgresql://read%40er:p%40ss%3Aw%2Frd%3F@db.internal:6543/sales%2Feu"
        "?connect_timeout=10&application_name=mlplatform-ingest"
    )


def test_next_version_number_and_lookup_by_content(dataset):
    assert selectors.dataset_version_next_number(dataset=dataset) == 1
    version = make_version(dataset, 4, sha256="c" * 64)
    assert selectors.dataset_version_next_number(dataset=dataset) == 5
    assert selectors.dataset_version_by_sha256(dataset=dataset, sha256="c" * 64) == version
    assert selectors.dataset_version_by_sha256(dataset=dataset, sha256="d" * 64) is None
    assert selectors.artifact_key_in_use(key=version.parquet_key) is True
    assert selectors.artifact_key_in_use(key="projects/x/data.parquet") is False


def test_projects_for_ingest_are_those_where_the_user_is_a_scientist(project, scientist, project_factory, admin_user):
    other = project_factory()
    assert selectors.project_list_for_dataset_ingest(actor=scientist) == [project]
    assert set(selectors.project_list_for_dataset_ingest(actor=admin_user)) == {project, other}
