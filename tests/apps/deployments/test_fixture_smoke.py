from apps.registry.choices import Stage


def test_production_version_is_a_real_signed_pipeline_in_production(production_version):
    from django.conf import settings

    from apps.core.artifacts import artifact_store
    from workers.ml.training.artifacts import load_model

    data = artifact_store().get_bytes(production_version.artifact_key)
    pipeline = load_model(
        data,
        sha256=production_version.artifact_sha256,
        signature=production_version.artifact_signature,
        key=settings.MODEL_SIGNING_KEY.encode(),
    )
    assert production_version.stage == Stage.PRODUCTION
    assert production_version.run.algorithm == "lightgbm"
    assert hasattr(pipeline, "predict_proba")
