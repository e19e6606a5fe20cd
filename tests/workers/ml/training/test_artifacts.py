"""Signed artifacts: a pipeline round-trips; tampered bytes, a wrong signature or key are refused before unpickling."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.workers.ml.training.conftest import make_spec
from workers.ml.training.artifacts import ArtifactTampered, dump_model, load_model, sign, verify
from workers.ml.training.preparation import build_pipeline

KEY = b"server-secret"


class TouchesWhenUnpickled:
    """Unpickling this creates a file: the stand-in for a malicious artifact."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def signed(data: bytes, key: bytes = KEY) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "signature": sign(data, key)}


def test_a_fitted_pipeline_round_trips(frame):
    spec = make_spec(features=("income", "region"))
    X = frame[["income", "region"]]
    pipeline = build_pipeline(spec, {"n_estimators": 10}).fit(X, frame["churned"])
    data = dump_model(pipeline)
    restored = load_model(data, **signed(data), key=KEY)
    assert np.array_equal(restored.predict_proba(X), pipeline.predict_proba(X))


def test_signature_is_hmac_sha256_hex():
    # RFC 4231 test case 2.
    key, data = b"Jefe", b"what do ya want for nothing?"
    assert sign(data, key) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_the_untampered_payload_does_run_when_loaded(tmp_path):
    """Control for the tests below: this payload really has an effect when it is unpickled."""
    marker = tmp_path / "ran"
    data = dump_model(TouchesWhenUnpickled(marker))
    load_model(data, **signed(data), key=KEY)
    assert marker.exists()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda data, record: (data + b"\x00", record), id="changed-bytes"),
        pytest.param(
            lambda data, record: (data, {**record, "signature": sign(data, b"attacker-key")}), id="foreign-signature"
        ),
        pytest.param(
            lambda data, record: (data + b"\x00", {**record, "sha256": hashlib.sha256(data + b"\x00").hexdigest()}),
            id="bytes-and-hash-changed",
        ),
        pytest.param(lambda data, record: (data, {**record, "signature": ""}), id="empty-signature"),
    ],
)
def test_tampered_artifacts_are_refused_and_never_unpickled(tmp_path, tamper):
    marker = tmp_path / "ran"
    data = dump_model(TouchesWhenUnpickled(marker))
    data, record = tamper(data, signed(data))
    with pytest.raises(ArtifactTampered):
        load_model(data, **record, key=KEY)
    assert not marker.exists()


def test_verify_under_another_key_fails():
    data = b"model bytes"
    with pytest.raises(ArtifactTampered, match="signature"):
        verify(data, **signed(data), key=b"other-key")


def test_an_empty_key_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        sign(b"model bytes", b"")
