"""Artifact keys are built by the server from ids it generated: exact layout, and refusal of anything else."""

import uuid

import pytest

from workers.storage.base import UnsafeKey
from workers.storage.keys import (
    dataset_original_key,
    dataset_parquet_key,
    upload_staging_key,
    validate_key,
    validate_prefix,
)

PROJECT = uuid.UUID("5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41")
DATASET = uuid.UUID("0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10")
JOB = uuid.UUID("9a7b6c5d-4e3f-4a1b-8c2d-1e0f9a8b7c6d")


def test_upload_staging_key_is_exact():
    assert upload_staging_key(project_id=PROJECT, job_id=JOB) == (
        "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/uploads/9a7b6c5d-4e3f-4a1b-8c2d-1e0f9a8b7c6d/original"
    )


def test_dataset_parquet_key_is_exact():
    assert dataset_parquet_key(project_id=PROJECT, dataset_id=DATASET, version=3) == (
        "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/datasets/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/v3/data.parquet"
    )


@pytest.mark.parametrize("extension", [".csv", ".csv.gz", ".parquet", ".jsonl", ".sql"])
def test_dataset_original_key_keeps_an_allowed_extension(extension):
    assert dataset_original_key(project_id=PROJECT, dataset_id=DATASET, version=1, extension=extension) == (
        "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/datasets/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/v1/original"
        + extension
    )


def test_ids_given_as_strings_in_any_case_give_the_same_key():
    assert upload_staging_key(project_id=str(PROJECT).upper(), job_id=JOB.hex) == upload_staging_key(
        project_id=PROJECT, job_id=JOB
    )


@pytest.mark.parametrize("bad_id", ["../../etc", "5c1d2a8e", "", "projects/x", 42, None])
def test_ids_that_are_not_uuids_are_refused(bad_id):
    with pytest.raises(ValueError):
        upload_staging_key(project_id=bad_id, job_id=JOB)
    with pytest.raises(ValueError):
        dataset_parquet_key(project_id=PROJECT, dataset_id=bad_id, version=1)


@pytest.mark.parametrize("version", [0, -1, True, "1", 1.0, None])
def test_versions_that_are_not_positive_integers_are_refused(version):
    with pytest.raises(UnsafeKey, match="version"):
        dataset_parquet_key(project_id=PROJECT, dataset_id=DATASET, version=version)
    with pytest.raises(UnsafeKey, match="version"):
        dataset_original_key(project_id=PROJECT, dataset_id=DATASET, version=version, extension=".csv")


@pytest.mark.parametrize("extension", [".exe", "", "csv", ".csv/../../x", "/../x.csv", ".CSV"])
def test_original_extensions_outside_the_allowed_list_are_refused(extension):
    with pytest.raises(UnsafeKey, match="extension"):
        dataset_original_key(project_id=PROJECT, dataset_id=DATASET, version=1, extension=extension)


@pytest.mark.parametrize("key", ["a", "a/b", "projects/x-1/v2/data.parquet", "A.b_c-d/e", "a/" + "b" * 200])
def test_validate_key_returns_a_safe_key_unchanged(key):
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/a",
        "a/",
        "a//b",
        "../a",
        "a/..",
        "a/./b",
        "a\\b",
        "a b",
        "a/\x00",
        "a\n",
        "é",
        ".a",
        "-a",
        "a/" + "b" * 201,
    ],
)
def test_validate_key_refuses_anything_else(key):
    with pytest.raises(UnsafeKey):
        validate_key(key)


def test_validate_key_accepts_1024_characters_and_refuses_more():
    assert validate_key("/".join(["abcd"] * 205)) == "/".join(["abcd"] * 205)  # 1024 characters
    with pytest.raises(UnsafeKey):
        validate_key("/".join(["abcd"] * 206))  # 1029 characters


@pytest.mark.parametrize(("prefix", "result"), [("projects/", "projects/"), ("projects/p", "projects/p"), ("a/", "a/")])
def test_validate_prefix_keeps_a_trailing_slash(prefix, result):
    assert validate_prefix(prefix) == result
