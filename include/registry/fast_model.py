"""The champion compiled for the request path, and the parity that decides whether it serves.

A scikit-learn pipeline spends ~6 ms on one flight (ColumnTransformer and DataFrame handling), the
trees themselves a fraction of that. At deployment the fitted pipeline is compiled into a
`FastModel`: the same arithmetic without pandas, scored from a plain dict of inputs.

- Gradient-boosted trees: the HistGradientBoosting model imported into treelite and evaluated by
  its GTIL interpreter (native categorical splits included). Category codes come from the
  pipeline's own fitted OrdinalEncoder; an unknown or missing category is NaN here, which is how
  scikit-learn's model sees the encoder's -1 (a missing value), not -1 (treelite reads a negative
  code as a category that goes right: |Δp| up to 0.02 measured).
- Logistic regression: folded into one weight per numeric column (the StandardScaler's mean and
  scale included) and one contribution per category value, each probed through the fitted
  OneHotEncoder, so its unknown and infrequent rules are the encoder's own.

Whatever the compiler does, `parity` decides: the deployment's smoke test scores its holdout with
both, and only a version whose max |Δp| is within PARITY_TOLERANCE serves through this path
(include/registry/deploy.py records the decision on the version). The compiled form is one JSON
document (treelite's own bytes base64 inside; never pickle), stored with the version's run and
loaded only when its sha256 equals the one recorded at deployment (tracking.load_model).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT = "airflow-mlops/fast-model/1"
FILE_NAME = "fast_model.json"
PARITY_TOLERANCE = 1e-5
"""Max |Δp| between the compiled model and the pipeline on the holdout for the fast path to serve."""
PARITY_ROWS = 5_000


class CompileError(ValueError):
    """The pipeline has no fast form (an unknown model or transformer): it serves as scikit-learn."""


class Parity(TypedDict):
    """The fast path's decision for a version (its `serving.*` tags)."""

    path: str  # "fast" or "sklearn"
    kind: str  # "treelite", "linear", or "" when nothing compiled
    rows: int
    max_abs_diff: float | None
    reason: str


@dataclass
class TreeModel:
    """HistGradientBoosting trees in treelite, with the pipeline's category codes."""

    columns: list[str]
    numeric: list[str]
    codes: dict[str, dict[str, float]]  # categorical column -> value -> ordinal code
    trees: Any  # treelite.Model
    kind: str = "treelite"

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np
        import pandas as pd

        out = np.empty((len(frame), len(self.numeric) + len(self.codes)), dtype=np.float64)
        out[:, : len(self.numeric)] = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        for j, (column, codes) in enumerate(self.codes.items(), start=len(self.numeric)):
            # Vectorised lookup; an unknown or missing value maps to NaN (position -1), which is
            # how scikit-learn's model sees the encoder's -1.
            positions = pd.Categorical(frame[column], categories=list(codes)).codes
            lookup = np.append(np.fromiter(codes.values(), dtype=np.float64, count=len(codes)), np.nan)
            out[:, j] = lookup[positions]
        return out

    def _scores(self, matrix: np.ndarray, threads: int) -> np.ndarray:
        import treelite.gtil

        return treelite.gtil.predict(self.trees, matrix, nthread=threads).reshape(len(matrix))

    def predict_one(self, features: Mapping[str, Any]) -> float:
        import numpy as np

        row = [float(features[n]) for n in self.numeric]
        for column, codes in self.codes.items():
            value = features.get(column)
            row.append(codes.get(value, math.nan) if isinstance(value, str) else math.nan)
        return float(self._scores(np.array([row], dtype=np.float64), 1)[0])

    def scores(self, frame: pd.DataFrame, threads: int = 1) -> np.ndarray:
        return self._scores(self._matrix(frame), threads)

    def document(self) -> dict[str, Any]:
        payload = base64.b64encode(self.trees.serialize_bytes()).decode("ascii")
        return {"numeric": self.numeric, "codes": self.codes, "treelite": payload}


@dataclass
class LinearModel:
    """A logistic regression folded into weights: z = bias + w·x + Σ contribution[category]."""

    columns: list[str]
    numeric: list[str]
    weights: list[float]  # coef / scale, per numeric column
    bias: float  # intercept - Σ coef * mean / scale
    contributions: dict[str, dict[str, float]]  # categorical column -> value -> coef of its one-hot
    unknown: dict[str, float]  # categorical column -> contribution of a value the encoder never saw
    kind: str = "linear"

    def predict_one(self, features: Mapping[str, Any]) -> float:
        z = self.bias
        for name, w in zip(self.numeric, self.weights, strict=True):
            z += w * float(features[name])
        for column, table in self.contributions.items():
            value = features.get(column)
            z += table.get(value, self.unknown[column]) if isinstance(value, str) else self.unknown[column]
        return _sigmoid(z)

    def scores(self, frame: pd.DataFrame, threads: int = 1) -> np.ndarray:
        import numpy as np

        z = frame[self.numeric].to_numpy(dtype=np.float64) @ np.asarray(self.weights) + self.bias
        for column, table in self.contributions.items():
            z = z + frame[column].map(table).fillna(self.unknown[column]).to_numpy(dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-z))

    def document(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "weights": self.weights,
            "bias": self.bias,
            "contributions": self.contributions,
            "unknown": self.unknown,
        }


FastModel = TreeModel | LinearModel


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)  # no overflow for a very negative z
    return e / (1.0 + e)


def predict_proba(model: FastModel, frame: pd.DataFrame, threads: int = 1) -> np.ndarray:
    """scikit-learn's (n, 2) form, for code written against predict_proba."""
    import numpy as np

    p = model.scores(frame, threads)
    return np.column_stack([1.0 - p, p])


def score_one(model: Any, features: Mapping[str, Any], columns: list[str]) -> float:
    """P(late) of one flight's inputs, by whichever form serves: the fast one from the dict as
    is, a pipeline through a one-row DataFrame (its ~6 ms path)."""
    if isinstance(model, TreeModel | LinearModel):
        return model.predict_one(features)
    import pandas as pd

    return float(model.predict_proba(pd.DataFrame([features], columns=columns))[0, 1])


def score_frame(model: Any, frame: pd.DataFrame, columns: list[str], threads: int = 1) -> np.ndarray:
    """P(late) of every row of `frame`, by whichever form serves."""
    if isinstance(model, TreeModel | LinearModel):
        return model.scores(frame, threads)
    return model.predict_proba(frame[columns])[:, 1]


def path_of(model: Any) -> str:
    """What serves: `treelite`, `linear`, or `sklearn` (the pipeline)."""
    return model.kind if isinstance(model, TreeModel | LinearModel) else "sklearn"


# --- compile -----------------------------------------------------------------------------------


def _steps(pipeline: Any) -> tuple[Any, Any]:
    steps = getattr(pipeline, "named_steps", {})
    if "features" not in steps or "model" not in steps:
        raise CompileError("not one of our pipelines (steps 'features' and 'model')")
    return steps["features"], steps["model"]


def _transformers(pre: Any) -> dict[str, tuple[Any, list[str]]]:
    return {name: (fitted, list(cols)) for name, fitted, cols in pre.transformers_ if name != "remainder"}


def compile_model(pipeline: Any, columns: list[str]) -> FastModel:
    """The fast form of a fitted pipeline of include/training/candidates.py; CompileError when it
    has none. `columns` is the version's signature (the order serving builds inputs in)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    pre, model = _steps(pipeline)
    parts = _transformers(pre)
    if set(parts) != {"num", "cat"}:
        raise CompileError(f"transformers {sorted(parts)}, expected 'num' and 'cat'")
    if isinstance(model, HistGradientBoostingClassifier):
        return _compile_trees(parts, model, columns)
    if isinstance(model, LogisticRegression):
        return _compile_linear(parts, model, columns)
    raise CompileError(f"no fast form for {type(model).__name__}")


def _compile_trees(parts: dict[str, tuple[Any, list[str]]], model: Any, columns: list[str]) -> TreeModel:
    import treelite.sklearn

    (passthrough, numeric), (encoder, categorical) = parts["num"], parts["cat"]
    # A fitted "passthrough" is an identity FunctionTransformer (func None).
    identity = passthrough == "passthrough" or getattr(passthrough, "func", "") is None
    if not identity or type(encoder).__name__ != "OrdinalEncoder":
        raise CompileError("trees need passthrough numbers and an OrdinalEncoder")
    if model.n_trees_per_iteration_ != 1:
        raise CompileError("only binary classifiers compile")
    codes = {
        column: {str(v): float(i) for i, v in enumerate(values) if isinstance(v, str)}
        for column, values in zip(categorical, encoder.categories_, strict=True)
    }
    return TreeModel(columns, numeric, codes, treelite.sklearn.import_model(model))


def _compile_linear(parts: dict[str, tuple[Any, list[str]]], model: Any, columns: list[str]) -> LinearModel:
    import warnings

    import numpy as np
    import pandas as pd

    (scaler, numeric), (encoder, categorical) = parts["num"], parts["cat"]
    if type(scaler).__name__ != "StandardScaler" or type(encoder).__name__ != "OneHotEncoder":
        raise CompileError("a linear model needs a StandardScaler and a OneHotEncoder")
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.shape[0] != 1:
        raise CompileError("only binary classifiers compile")
    coef = coef[0]
    scale = np.asarray(scaler.scale_ if scaler.with_std else np.ones(len(numeric)), dtype=np.float64)
    mean = np.asarray(scaler.mean_ if scaler.with_mean else np.zeros(len(numeric)), dtype=np.float64)
    w_num, w_cat = coef[: len(numeric)] / scale, coef[len(numeric) :]
    bias = float(model.intercept_[0] - (w_num * mean).sum())
    # Probe the fitted encoder: each known value, then one it never saw, in every column at once
    # (its one-hot blocks are disjoint, so each column's contribution separates).
    names = [str(n) for n in encoder.get_feature_names_out(categorical)]
    contributions: dict[str, dict[str, float]] = {}
    unknown: dict[str, float] = {}
    for j, column in enumerate(categorical):
        block = np.array([n.startswith(f"{column}_") for n in names])
        known = [str(v) for v in encoder.categories_[j] if isinstance(v, str)]
        probe = pd.DataFrame(
            {c: [str(encoder.categories_[k][0])] * (len(known) + 1) for k, c in enumerate(categorical)}
        )
        probe[column] = [*known, "\x00never seen"]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Found unknown categories")
            onehot = encoder.transform(probe)
        onehot = onehot.toarray() if hasattr(onehot, "toarray") else np.asarray(onehot)
        values = onehot[:, block] @ w_cat[block]
        contributions[column] = {v: float(x) for v, x in zip(known, values[:-1], strict=True)}
        unknown[column] = float(values[-1])
    return LinearModel(columns, numeric, [float(x) for x in w_num], bias, contributions, unknown)


# --- parity ------------------------------------------------------------------------------------


def parity(pipeline: Any, columns: list[str], holdout: pd.DataFrame) -> tuple[FastModel | None, Parity]:
    """Compile `pipeline` and score up to PARITY_ROWS holdout rows with both: the fast form serves
    only within PARITY_TOLERANCE; otherwise (or when nothing compiles) the pipeline serves, and
    the reason says why."""
    import numpy as np

    rows = holdout.head(PARITY_ROWS)
    try:
        fast = compile_model(pipeline, columns)
    except CompileError as exc:
        return None, Parity(path="sklearn", kind="", rows=0, max_abs_diff=None, reason=f"not compiled: {exc}")
    expected = pipeline.predict_proba(rows[columns])[:, 1]
    got = fast.scores(rows[columns])
    one = [fast.predict_one(r) for r in rows[columns].head(50).to_dict("records")]
    diff = float(
        max(np.abs(got - expected).max(initial=0.0), np.abs(np.array(one) - expected[:50]).max(initial=0.0))
    )
    if not math.isfinite(diff) or diff > PARITY_TOLERANCE:
        reason = f"max |Δp| {diff:.3g} over {len(rows)} holdout rows > {PARITY_TOLERANCE:g}"
        return None, Parity(path="sklearn", kind=fast.kind, rows=len(rows), max_abs_diff=diff, reason=reason)
    reason = f"max |Δp| {diff:.3g} over {len(rows)} holdout rows <= {PARITY_TOLERANCE:g}"
    return fast, Parity(path="fast", kind=fast.kind, rows=len(rows), max_abs_diff=diff, reason=reason)


# --- the stored form ---------------------------------------------------------------------------


def dumps(model: FastModel) -> bytes:
    """The stored form: canonical JSON (same model, same bytes, so the same sha256)."""
    document = {"format": FORMAT, "kind": model.kind, "columns": model.columns, **model.document()}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def loads(data: bytes) -> FastModel:
    """A stored fast model. Only FORMAT documents load (a ValueError otherwise); the caller checks
    the bytes' sha256 against the version's record before calling this."""
    document = json.loads(data.decode("utf-8"))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} document")
    columns = [str(c) for c in document["columns"]]
    if document.get("kind") == "treelite":
        import treelite

        trees = treelite.Model.deserialize_bytes(base64.b64decode(document["treelite"]))
        return TreeModel(columns, document["numeric"], document["codes"], trees)
    if document.get("kind") == "linear":
        return LinearModel(
            columns,
            document["numeric"],
            [float(w) for w in document["weights"]],
            float(document["bias"]),
            document["contributions"],
            {k: float(v) for k, v in document["unknown"].items()},
        )
    raise ValueError(f"unknown fast model kind {document.get('kind')!r}")
