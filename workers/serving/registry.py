"""The model versions a server holds in memory: loaded from the artifact store, verified before unpickling.

`load_version` reads the artifact and hands it to workers.ml.training.artifacts.load_model, which checks the SHA-256
and the HMAC signature before anything is unpickled. A version that fails (missing object, tampered bytes, bad
signature) is not served: it is listed in `failures` with the reason and reported not ready, the others keep
serving. `reload` loads every new version BEFORE swapping the table in one assignment, so requests see either the
old table or the new one, and a version whose new load failed keeps its old copy serving.
"""

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.ml.evaluation.explain import Explainer, build_explainer, explain_rows
from workers.ml.evaluation.jsonsafe import plain
from workers.ml.training.algorithms import ALGORITHMS
from workers.ml.training.artifacts import ArtifactTampered, load_model
from workers.serving.config import Deployment, VersionSpec
from workers.serving.fastpath import Fallback, FastPredictor, NotCompilable, compile_predictor
from workers.serving.validation import InputValidator
from workers.storage.base import StorageError
from workers.storage.factory import artifact_store_from_uri


@dataclass
class Predictions:
    labels: list[Any]  # the predicted class or value per row
    probabilities: list[list[float]] | None  # per row, in the order of `classes` (classification)


@dataclass
class LoadedVersion:
    spec: VersionSpec
    pipeline: Any = field(repr=False)
    validator: InputValidator = field(repr=False)
    # The compiled prediction path (workers.serving.fastpath), None when the pipeline holds something it cannot
    # reproduce exactly; `fast_path_refusal` says why.
    fast: FastPredictor | None = field(default=None, repr=False)
    fast_path_refusal: str | None = None
    _explainer: Explainer | None = field(default=None, repr=False)
    _explainer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def classes(self) -> list[Any] | None:
        if self.spec.problem_type == "regression":
            return None
        return [plain(value) for value in self.pipeline.classes_]

    def predict(self, frame: pd.DataFrame, columns: dict[str, list[Any]] | None = None) -> Predictions:
        """Predictions for the validated `frame`; with `columns` (the same validated values, as the request sent
        them) through the compiled path when the version has one, a fraction of the pipeline's time at any batch
        size (see ADR 0010, fast path)."""
        outputs = self._compiled_output(columns) if columns is not None else None
        if self.spec.problem_type == "regression":
            values = self.pipeline.predict(frame) if outputs is None else outputs
            return Predictions(labels=[float(value) for value in values], probabilities=None)
        # One pass: the label is the most probable class, as the estimators' own predict decides it.
        probabilities = self.pipeline.predict_proba(frame) if outputs is None else outputs
        classes = self.classes
        labels = [classes[index] for index in np.argmax(probabilities, axis=1)]
        return Predictions(labels=labels, probabilities=probabilities.tolist())

    def _compiled_output(self, columns: dict[str, list[Any]]) -> np.ndarray | None:
        if self.fast is None:
            return None
        try:
            return self.fast.predict(columns)
        except Fallback:
            return None  # a value only pandas reads exactly: the pipeline answers

    @property
    def signature_columns(self) -> set[str]:
        return {column["name"] for column in self.spec.input_signature["columns"]}

    def explain(self, frame: pd.DataFrame) -> list[dict]:
        return explain_rows(self.explainer(), frame)

    def explainer(self) -> Explainer:
        """Built on the first explanation, once (it can take a while for non-tree models)."""
        with self._explainer_lock:
            if self._explainer is None:
                self._explainer = version_explainer(
                    self.pipeline,
                    input_signature=self.spec.input_signature,
                    algorithm=self.spec.algorithm,
                    problem_type=self.spec.problem_type,
                )
            return self._explainer


def version_explainer(
    pipeline: Any, *, input_signature: dict[str, Any], algorithm: str, problem_type: str
) -> Explainer:
    """The explainer of a served version. The model server and the portal's worker (explaining a logged prediction
    months later, workers/tasks/explanations.py) both build it here, so they explain against the same reference row
    with the same explainer and agree to the last digit."""
    registered = ALGORITHMS.get(algorithm)
    return build_explainer(
        pipeline,
        reference_rows(input_signature),
        tree_based=bool(registered and registered.tree_based),
        problem_type=problem_type,
    )


def reference_rows(signature: dict[str, Any]) -> pd.DataFrame:
    """One typical row built from the signature (numeric: the middle of the training range; categorical: the most
    frequent category). The server has no training rows: linear and kernel explanations are relative to this row;
    the tree explainer does not use it."""
    row: dict[str, Any] = {}
    for column in signature["columns"]:
        kind = column["kind"]
        if kind == "numeric":
            low, high = column.get("min", 0.0), column.get("max", 0.0)
            row[column["name"]] = (low + high) / 2
        elif kind == "categorical":
            row[column["name"]] = (column.get("categories") or [None])[0]
        elif kind == "datetime":
            row[column["name"]] = column.get("min")
        else:
            row[column["name"]] = False
    return pd.DataFrame([row])


class LoadFailed(Exception):
    pass


def load_version(spec: VersionSpec, *, key: bytes, max_rows: int) -> LoadedVersion:
    """The verified, unpickled version, or LoadFailed with the reason."""
    try:
        store = artifact_store_from_uri(
            spec.artifact_store,
            # An S3-compatible store other than AWS: the same variables the portal reads (the runner passes them).
            endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            region=os.environ.get("S3_REGION") or None,
        )
        with store.open(spec.artifact_key) as stream:
            data = stream.read()
        pipeline = load_model(data, sha256=spec.sha256, signature=spec.signature, key=key)
    except (ArtifactTampered, StorageError, ValueError, OSError) as exc:
        raise LoadFailed(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the artifact verified but does not unpickle here (library mismatch)
        raise LoadFailed(f"cannot load the verified artifact: {type(exc).__name__}: {exc}") from exc
    fast, refusal = compiled_path(pipeline, spec)
    return LoadedVersion(
        spec=spec,
        pipeline=pipeline,
        validator=InputValidator(spec.input_signature, max_rows=max_rows),
        fast=fast,
        fast_path_refusal=refusal,
    )


def compiled_path(pipeline: Any, spec: VersionSpec) -> tuple[FastPredictor | None, str | None]:
    """The version's compiled prediction path, checked against the pipeline on the signature's reference row, or
    None and the reason (the pipeline then answers every request)."""
    if spec.problem_type not in ("binary", "multiclass", "regression"):
        return None, f"no compiled path for {spec.problem_type}"
    probe = reference_rows(spec.input_signature).to_dict("list")
    try:
        return compile_predictor(pipeline, probe=probe), None
    except NotCompilable as exc:
        return None, str(exc)


@dataclass(frozen=True)
class _Table:
    versions: dict[tuple[str, str], LoadedVersion]
    failures: dict[tuple[str, str], str]
    default: tuple[str, str]


class ModelRegistry:
    def __init__(self, *, key: bytes, max_rows: int):
        self._key = key
        self._max_rows = max_rows
        self._table = _Table(versions={}, failures={}, default=("", ""))
        self._reload_lock = threading.Lock()

    def reload(self, deployment: Deployment) -> dict[tuple[str, str], str]:
        """Serve `deployment`: load what is new, keep what is unchanged, then swap. Returns the failures."""
        with self._reload_lock:
            current = self._table.versions
            versions: dict[tuple[str, str], LoadedVersion] = {}
            failures: dict[tuple[str, str], str] = {}
            for spec in deployment.versions:
                old = current.get(spec.ref)
                if old is not None and old.spec.sha256 == spec.sha256 and old.spec.signature == spec.signature:
                    versions[spec.ref] = old
                    continue
                try:
                    versions[spec.ref] = load_version(spec, key=self._key, max_rows=self._max_rows)
                except LoadFailed as exc:
                    failures[spec.ref] = str(exc)
                    if old is not None:
                        versions[spec.ref] = old  # the old copy keeps serving
            self._table = _Table(versions=versions, failures=failures, default=deployment.default)
            return failures

    def get(self, name: str, version: str | None = None) -> LoadedVersion | None:
        """A loaded version; without `version`, the one of that name listed last in the deployment."""
        versions = self._table.versions
        if version is not None:
            return versions.get((name, version))
        found = None
        for ref, loaded in versions.items():
            if ref[0] == name:
                found = loaded
        return found

    @property
    def default_ref(self) -> tuple[str, str]:
        return self._table.default

    def default(self) -> LoadedVersion | None:
        return self._table.versions.get(self._table.default)

    def failure(self, name: str, version: str | None = None) -> str | None:
        for ref, reason in self._table.failures.items():
            if ref[0] == name and version in (None, ref[1]):
                return reason
        return None

    def knows(self, name: str, version: str | None = None) -> bool:
        refs = [*self._table.versions, *self._table.failures]
        return any(ref[0] == name and version in (None, ref[1]) for ref in refs)

    def versions_of(self, name: str) -> list[str]:
        refs = dict.fromkeys([*self._table.versions, *self._table.failures])
        return [ref[1] for ref in refs if ref[0] == name]

    @property
    def ready(self) -> bool:
        """The default version (the one /invocations answers with) is loaded; a failed other version is reported
        by its own readiness, it does not take the whole server out of rotation."""
        return self._table.default in self._table.versions

    @property
    def failures(self) -> dict[tuple[str, str], str]:
        return dict(self._table.failures)
