"""The fast inference path: compiled models score like their pipelines, or do not serve.

Both model kinds of the grid are fitted on a constructed set where carrier and origin matter (so
the trees split on categories) and scored on a holdout with a carrier the encoder never saw and a
missing one. Controls show the parity gate refusing a compiled model that is wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from include.registry import fast_model
from include.training.candidates import input_columns, make_pipeline

FEATURES = [f"f{i}" for i in range(8)] + ["weather_missing"]
COLUMNS = input_columns(FEATURES)
CARRIERS = ["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN", "VX", "HA"]
SHARES = [0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.03, 0.018, 0.002]  # HA: rare (infrequent)
SPECS = {
    "trees": {"model": "hist_gradient_boosting", "max_depth": 4, "learning_rate": 0.1, "max_iter": 60},
    "linear": {"model": "logistic_regression", "C": 1.0},
}


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES) - 1)), columns=FEATURES[:-1])
    frame["weather_missing"] = (rng.random(n) < 0.1).astype(int)
    frame["carrier"] = rng.choice(CARRIERS, size=n, p=SHARES)
    frame["origin"] = rng.choice(["EWR", "JFK", "LGA"], size=n)
    effect = frame["carrier"].map({c: i / 5 for i, c in enumerate(CARRIERS)})
    z = frame["f0"] - frame["f1"] * frame["f2"] + effect + 0.5 * (frame["origin"] == "JFK") - 1.0
    return frame[COLUMNS], (z + rng.normal(size=n) > 0).to_numpy(dtype=int)


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    frame, y = _frame(4_000, seed=1)
    return {kind: make_pipeline(spec, FEATURES).fit(frame, y) for kind, spec in SPECS.items()}


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    frame, _ = _frame(600, seed=2)
    frame.loc[0:9, "carrier"] = "ZZ"  # never seen in training
    frame.loc[10:14, "carrier"] = None  # missing
    frame.loc[15:19, "origin"] = "SWF"
    return frame


@pytest.mark.parametrize("kind", ["trees", "linear"])
def test_compiled_model_scores_like_its_pipeline(kind: str, fitted: dict, holdout: pd.DataFrame) -> None:
    pipeline = fitted[kind]
    fast, decision = fast_model.parity(pipeline, COLUMNS, holdout)
    assert decision["path"] == "fast", decision
    assert fast is not None and decision["kind"] == {"trees": "treelite", "linear": "linear"}[kind]
    assert decision["rows"] == len(holdout)
    expected = pipeline.predict_proba(holdout)[:, 1]
    assert np.abs(fast.scores(holdout) - expected).max() < 1e-9
    one = [fast.predict_one(row) for row in holdout.head(30).to_dict("records")]
    assert np.abs(np.array(one) - expected[:30]).max() < 1e-9
    assert fast_model.predict_proba(fast, holdout).shape == (len(holdout), 2)


@pytest.mark.parametrize("kind", ["trees", "linear"])
def test_stored_form_round_trips_to_the_same_scores_and_bytes(
    kind: str, fitted: dict, holdout: pd.DataFrame
) -> None:
    fast = fast_model.compile_model(fitted[kind], COLUMNS)
    data = fast_model.dumps(fast)
    again = fast_model.loads(data)
    assert np.array_equal(again.scores(holdout), fast.scores(holdout))
    assert fast_model.dumps(again) == data  # canonical: the recorded sha256 stays valid
    assert fast_model.dumps(fast_model.compile_model(fitted[kind], COLUMNS)) == data


def test_unknown_category_as_minus_one_is_caught_by_parity(fitted: dict, holdout: pd.DataFrame) -> None:
    """The encoder's -1 is a missing value to scikit-learn, a category to treelite: a compiled
    model that passed it on would be wrong for unseen carriers. The gate refuses such a model."""
    pipeline = fitted["trees"]
    fast = fast_model.compile_model(pipeline, COLUMNS)
    assert isinstance(fast, fast_model.TreeModel)
    wrong = fast_model.TreeModel(
        fast.columns, fast.numeric, {c: {**codes, "ZZ": -1.0} for c, codes in fast.codes.items()}, fast.trees
    )
    expected = pipeline.predict_proba(holdout)[:, 1]
    unseen = holdout["carrier"].eq("ZZ").to_numpy()
    assert np.abs(wrong.scores(holdout)[unseen] - expected[unseen]).max() > fast_model.PARITY_TOLERANCE
    assert np.abs(fast.scores(holdout)[unseen] - expected[unseen]).max() < 1e-9  # control


def test_parity_refuses_a_model_that_differs(fitted: dict, holdout: pd.DataFrame, monkeypatch) -> None:
    real = fast_model.compile_model

    def shifted(pipeline: object, columns: list[str]) -> fast_model.FastModel:
        model = real(pipeline, columns)
        assert isinstance(model, fast_model.LinearModel)
        model.bias += 1e-3  # a compiler bug of 1e-3 in the logit
        return model

    monkeypatch.setattr(fast_model, "compile_model", shifted)
    fast, decision = fast_model.parity(fitted["linear"], COLUMNS, holdout)
    assert fast is None and decision["path"] == "sklearn"
    assert decision["max_abs_diff"] is not None and decision["max_abs_diff"] > fast_model.PARITY_TOLERANCE
    assert "max |Δp|" in decision["reason"]


def test_a_pipeline_without_a_fast_form_serves_as_scikit_learn(holdout: pd.DataFrame) -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    frame, y = _frame(200, seed=3)
    pipeline = Pipeline([("model", DummyClassifier())]).fit(frame, y)
    fast, decision = fast_model.parity(pipeline, COLUMNS, holdout)
    assert fast is None and decision["path"] == "sklearn" and decision["kind"] == ""
    assert decision["reason"].startswith("not compiled:")


def test_only_our_format_loads() -> None:
    with pytest.raises(ValueError, match="not a"):
        fast_model.loads(b'{"format": "pickle"}')
    with pytest.raises(ValueError, match="unknown fast model kind"):
        fast_model.loads(b'{"format": "%s", "kind": "onnx", "columns": []}' % fast_model.FORMAT.encode())


def test_linear_sigmoid_is_finite_at_the_extremes() -> None:
    assert fast_model._sigmoid(-1000.0) == 0.0 and fast_model._sigmoid(1000.0) == 1.0
    assert math.isclose(fast_model._sigmoid(0.0), 0.5)
