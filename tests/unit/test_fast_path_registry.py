"""The fast path through the registry: the smoke test proves parity and records which form
serves; the loader hands serving the compiled form only with the bytes the smoke test recorded.
On a real local MLflow (SQLite + local artifacts in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from include.registry import fast_model, smoke, tracking
from include.registry.tracking import UntrustedModelError
from include.training.candidates import make_pipeline
from tests.unit.test_fast_model import COLUMNS, FEATURES, SPECS, _frame
from tests.unit.test_model_loading import local_mlflow  # noqa: F401 (a fixture)


def _register(settings, spec: dict) -> tuple[str, object]:
    import mlflow
    from mlflow.models import infer_signature

    frame, y = _frame(3_000, seed=1)
    pipeline = make_pipeline(spec, FEATURES).fit(frame, y)
    tracking.client(settings)
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings)), tracking.quiet_skops():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(frame.head(5), np.zeros(5)),
            pip_requirements=["scikit-learn"],
            skops_trusted_types=tracking.SKOPS_TRUSTED_TYPES,
        )
    version = str(mlflow.register_model(info.model_uri, settings.model_name).version)
    tracking.client(settings).set_model_version_tag(settings.model_name, version, tracking.GATE_TAG, "deploy")
    return version, pipeline


def _holdout():
    frame, _ = _frame(400, seed=2)
    frame.loc[0:4, "carrier"] = "ZZ"
    return frame


def _tags(settings, version: str) -> dict[str, str]:
    return dict(tracking.client(settings).get_model_version(settings.model_name, version).tags)


@pytest.mark.parametrize("kind", ["trees", "linear"])
def test_smoke_test_proves_parity_and_serving_loads_the_compiled_form(local_mlflow, kind) -> None:  # noqa: F811
    settings = local_mlflow
    version, pipeline = _register(settings, SPECS[kind])
    holdout = _holdout()
    result = smoke.run_smoke_test(settings, version, holdout)
    assert result["passed"], result
    tags = _tags(settings, version)
    assert tags["serving.path"] == "fast" and tags["smoke_test"] == "passed"
    assert tags["serving.fast_kind"] == {"trees": "treelite", "linear": "linear"}[kind]
    assert float(tags["serving.parity_max_abs_diff"]) <= fast_model.PARITY_TOLERANCE
    assert tags["serving.parity_rows"] == str(len(holdout))

    served = tracking.load_model(settings, version, serving=True)
    assert fast_model.path_of(served) == tags["serving.fast_kind"]
    expected = pipeline.predict_proba(holdout[COLUMNS])[:, 1]
    assert np.abs(fast_model.score_frame(served, holdout, COLUMNS) - expected).max() <= 1e-9
    # control: without `serving` the loader gives the pipeline, as the gate and monitoring use it
    assert fast_model.path_of(tracking.load_model(settings, version)) == "sklearn"


def _artifact(settings, version: str) -> Path:
    run_id = tracking.client(settings).get_model_version(settings.model_name, version).run_id
    root = urlparse(tracking.client(settings).get_run(run_id).info.artifact_uri).path
    return Path(root) / tracking.FAST_ARTIFACT_DIR / fast_model.FILE_NAME


def test_a_compiled_model_changed_after_its_smoke_test_is_refused(local_mlflow) -> None:  # noqa: F811
    settings = local_mlflow
    version, _ = _register(settings, SPECS["linear"])
    smoke.run_smoke_test(settings, version, _holdout())
    path = _artifact(settings, version)
    document = json.loads(path.read_bytes())
    document["bias"] += 5.0  # a well-formed model that would flag every flight late
    path.write_bytes(fast_model.dumps(fast_model.loads(json.dumps(document).encode())))
    with pytest.raises(UntrustedModelError, match="sha256 is not the one its smoke test recorded"):
        tracking.load_model(settings, version, serving=True)


def test_a_version_whose_compiled_form_differs_serves_as_scikit_learn(local_mlflow, monkeypatch) -> None:  # noqa: F811
    settings = local_mlflow
    version, _ = _register(settings, SPECS["linear"])
    real = fast_model.compile_model

    def off_by_a_little(pipeline, columns):
        model = real(pipeline, columns)
        model.bias += 1e-3
        return model

    monkeypatch.setattr(fast_model, "compile_model", off_by_a_little)
    assert smoke.run_smoke_test(settings, version, _holdout())["passed"]
    tags = _tags(settings, version)
    assert tags["serving.path"] == "sklearn" and tags["serving.fast_kind"] == "linear"
    assert "> 1e-05" in tags["serving.reason"]
    assert fast_model.path_of(tracking.load_model(settings, version, serving=True)) == "sklearn"
