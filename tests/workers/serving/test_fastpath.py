"""The compiled prediction path gives the pipeline's answer (within 1e-9) for every algorithm and preparation
option, on batches and on single rows (whose columns pandas types differently), with missing values, unseen
categories, integer and boolean categories and booleans as text; what it cannot reproduce goes to the pipeline."""

import functools

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer

from tests.support.async_run import run_async
from tests.workers.serving.conftest import KEY, Running, v2_body
from workers.ml.training.preparation import build_pipeline
from workers.ml.training.signature import input_signature
from workers.ml.training.spec import ExperimentSpec, Preparation
from workers.serving.config import VersionSpec
from workers.serving.fastpath import (
    Fallback,
    NotCompilable,
    _check_against_pipeline,
    compile_predictor,
    pipeline_output,
)
from workers.serving.registry import compiled_path, load_version
from workers.serving.validation import InputValidator

TOLERANCE = 1e-9
KINDS = {
    "age": "numeric",
    "income": "numeric",
    "score": "numeric",
    "colour": "categorical",
    "tier": "categorical",
    "member": "boolean",
    "joined": "datetime",
}
NUMERIC = [name for name, kind in KINDS.items() if kind == "numeric"]
COLOURS = ["red", "green", "blue", "amber"]


NAIVE = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S.%f"]
WITH_OFFSET = ["%Y-%m-%dT%H:%M:%S+02:00", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d %H:%M:%S-05:30"]


def raw_rows(rows: int, seed: int, datetime_formats: list[str] = NAIVE) -> dict[str, list]:
    """Columns as a JSON request carries them: None for missing, integer tiers, booleans as bools, 0/1 and text;
    datetimes all naive or all with an offset (a mix is left to pandas, see the Fallback test)."""
    rng = np.random.default_rng(seed)
    missing = rng.random((len(KINDS), rows)) < 0.1
    base = pd.Timestamp("2020-01-01", tz="UTC")
    columns = {
        "age": [float(value) for value in rng.normal(40, 12, rows)],
        "income": [float(value) for value in rng.lognormal(0, 1, rows)],
        "score": [int(value) for value in rng.integers(0, 100, rows)],
        "colour": [str(value) for value in rng.choice(COLOURS, rows)],
        "tier": [int(value) for value in rng.integers(1, 5, rows)],
        "member": [[True, False, 1, 0, "yes", "No", "t", "0"][value] for value in rng.integers(0, 8, rows)],
        "joined": [
            (base + pd.Timedelta(minutes=int(minutes))).strftime(fmt)
            for minutes, fmt in zip(
                rng.integers(0, 3 * 365 * 24 * 60, rows),
                rng.choice(datetime_formats, rows),
                strict=True,
            )
        ],
    }
    for position, name in enumerate(KINDS):
        columns[name] = [None if missing[position][row] else value for row, value in enumerate(columns[name])]
    return columns


def as_frame(columns: dict[str, list]) -> pd.DataFrame:
    """The DataFrame InputValidator.frame builds from the same values (numbers as float64, the rest as sent)."""
    return pd.DataFrame(
        {
            name: np.array([np.nan if value is None else value for value in values], dtype="float64")
            if KINDS.get(name) == "numeric"
            else values
            for name, values in columns.items()
        }
    )


def target_of(columns: dict[str, list], problem_type: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    age = np.array([40.0 if value is None else value for value in columns["age"]])
    signal = (age - 40) / 12 + np.array([value == "red" for value in columns["colour"]]) + rng.normal(0, 0.7, len(age))
    if problem_type == "regression":
        return signal * 10
    if problem_type == "binary":
        return np.where(signal > 0.3, "yes", "no")
    return np.digitize(signal, [-0.5, 0.5]).astype(str)


CASES = {
    "lightgbm-binary-default": ("lightgbm", "binary", Preparation()),
    "lightgbm-binary-target": ("lightgbm", "binary", Preparation(encoding="target", outliers="iqr")),
    "lightgbm-multiclass-ordinal": (
        "lightgbm",
        "multiclass",
        Preparation(encoding="ordinal", missing="indicator", scaling="none"),
    ),
    "lightgbm-regression-clip": (
        "lightgbm",
        "regression",
        Preparation(outliers="clip_quantiles", scaling="robust", datetime_parts=("year", "hour", "minute")),
    ),
    "logistic-binary-minmax": ("logistic_regression", "binary", Preparation(missing="mean", scaling="minmax")),
    "logistic-multiclass-target": (
        "logistic_regression",
        "multiclass",
        Preparation(encoding="target", missing="constant", missing_constant=-1.0),
    ),
    "forest-binary-ordinal": ("random_forest", "binary", Preparation(encoding="ordinal", missing="mode")),
    "forest-multiclass-indicator": ("random_forest", "multiclass", Preparation(missing="indicator")),
    "forest-regression-onehot": ("random_forest", "regression", Preparation(scaling="none", datetime_parts=())),
    "ridge-regression-target": (
        "linear_regression",
        "regression",
        Preparation(encoding="target", missing="indicator", scaling="robust", outliers="iqr"),
    ),
}
PARAMS = {"lightgbm": {"n_estimators": 20}, "random_forest": {"n_estimators": 10}}


@functools.cache
def trained(case: str):
    algorithm, problem_type, preparation = CASES[case]
    columns = raw_rows(500, seed=0)
    target = target_of(columns, problem_type, seed=0)
    spec = ExperimentSpec(
        problem_type=problem_type,
        target="target",
        features=tuple(KINDS),
        feature_kinds=dict(KINDS),
        algorithms=(algorithm,),
        primary_metric={"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}[problem_type],
        preparation=preparation,
        seed=0,
    )
    frame = as_frame(columns)
    pipeline = build_pipeline(spec, PARAMS.get(algorithm, {}))
    pipeline.fit(frame, target)
    return pipeline, input_signature(frame.assign(target=target), spec)


def request_rows(datetime_formats: list[str] = NAIVE) -> dict[str, list]:
    """New rows, plus an unseen colour, an unseen tier and a row with every value missing."""
    columns = raw_rows(120, seed=7, datetime_formats=datetime_formats)
    extra = {
        "age": [35.0, None, 1e6],
        "income": [1.0, None, -5.0],
        "score": [50, None, 7],
        "colour": ["violet", None, "red"],
        "tier": [9, None, 2],
        "member": ["YES", None, False],
        "joined": [pd.Timestamp("2019-06-30 23:59").strftime(datetime_formats[0]), None, None],
    }
    return {name: values + extra[name] for name, values in columns.items()}


def single(columns: dict[str, list], row: int) -> dict[str, list]:
    return {name: [values[row]] for name, values in columns.items()}


@pytest.mark.parametrize("datetime_formats", [NAIVE, WITH_OFFSET], ids=["naive", "offset"])
@pytest.mark.parametrize("case", CASES)
def test_the_compiled_path_gives_the_pipelines_answer(case, datetime_formats):
    pipeline, _ = trained(case)
    predictor = compile_predictor(pipeline)
    columns = request_rows(datetime_formats)

    batch = predictor.predict(columns)

    expected = pipeline_output(pipeline, as_frame(columns))
    assert batch.shape == expected.shape
    np.testing.assert_allclose(batch, expected, rtol=0, atol=TOLERANCE)
    for row in [*range(0, 120, 8), 120, 121, 122]:
        one = single(columns, row)
        np.testing.assert_allclose(
            predictor.predict(one), pipeline_output(pipeline, as_frame(one)), rtol=0, atol=TOLERANCE
        )


def test_the_compiled_path_reads_what_the_validator_accepts_like_the_pipeline():
    pipeline, signature = trained("lightgbm-binary-default")
    predictor = compile_predictor(pipeline)
    validator = InputValidator(signature, max_rows=1000)
    columns = raw_rows(60, seed=3)

    frame = validator.frame(columns)

    np.testing.assert_allclose(predictor.predict(columns), pipeline.predict_proba(frame), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    "joined",
    [
        ["2021-W05-3"],  # an ISO week date: valid, but pandas reads it, not the compiled path
        ["1650-01-01"],  # before pandas' range: NaT there
        # pandas reads a naive value after an offset one with that offset: not reproduced, left to pandas
        ["2020-01-01T10:00:00+02:00", "2021-12-14T00:23:00"],
    ],
)
def test_datetimes_pandas_reads_its_own_way_are_left_to_the_pipeline(joined):
    pipeline, _ = trained("lightgbm-binary-default")
    predictor = compile_predictor(pipeline)
    columns = {name: values[: len(joined)] for name, values in request_rows().items()} | {"joined": joined}

    with pytest.raises(Fallback):
        predictor.predict(columns)


def test_a_transformer_it_does_not_know_is_not_compiled():
    pipeline, _ = trained("lightgbm-binary-default")
    numeric = pipeline.named_steps["prepare"].named_transformers_["numeric"]
    changed = Pipeline([*numeric.steps[:-1], ("scale", QuantileTransformer(n_quantiles=10))])
    prepare = pipeline.named_steps["prepare"]
    prepare.transformers_[0] = ("numeric", changed, prepare.transformers_[0][2])
    try:
        with pytest.raises(NotCompilable, match="unexpected step QuantileTransformer"):
            compile_predictor(pipeline)
    finally:
        prepare.transformers_[0] = ("numeric", numeric, prepare.transformers_[0][2])


def test_a_compiled_path_that_disagrees_with_the_pipeline_on_the_probe_is_refused():
    other, _ = trained("lightgbm-binary-target")
    pipeline, _ = trained("lightgbm-binary-default")
    probe = single(request_rows(), 0)

    with pytest.raises(NotCompilable, match="disagrees"):
        _check_against_pipeline(compile_predictor(other), pipeline, probe)


def version_spec(signature, problem_type: str = "binary") -> VersionSpec:
    return VersionSpec(
        name="m",
        version="1",
        artifact_store="file:///nowhere",
        artifact_key="model.joblib",
        sha256="0",
        signature="0",
        problem_type=problem_type,
        input_signature=signature,
    )


def test_a_version_without_a_compiled_path_says_why():
    pipeline, signature = trained("lightgbm-binary-default")

    fast, refusal = compiled_path(Pipeline([("model", pipeline.named_steps["model"])]), version_spec(signature))

    assert fast is None
    assert refusal == "not a prepare -> model pipeline"


def test_the_server_answers_through_the_compiled_path_with_the_pipelines_answer(artifacts, serve):
    app = serve([artifacts.publish("churn", "1")])
    loaded = app.registry.default()
    assert loaded.fast is not None and loaded.fast_path_refusal is None

    async def go():
        async with Running(app) as client:
            return await client.post("/v2/models/churn/infer", v2_body())

    answer = run_async(go()).json()

    probabilities = next(output for output in answer["outputs"] if output["name"] == "predict_proba")["data"]
    frame = loaded.validator.frame({name: tensor["data"] for name, tensor in _tensors(v2_body()).items()})
    np.testing.assert_allclose(probabilities, loaded.pipeline.predict_proba(frame)[0], rtol=0, atol=TOLERANCE)


def _tensors(body: dict) -> dict:
    return {tensor["name"]: tensor for tensor in body["inputs"]}


def test_loading_a_version_compiles_it(artifacts):
    entry = artifacts.publish("churn", "1")
    spec = VersionSpec(**{key: entry[key] for key in VersionSpec.__dataclass_fields__})

    loaded = load_version(spec, key=KEY, max_rows=10)

    assert loaded.fast is not None
