"""The promotion check on constructed nights whose answer is known: a better shadow is promoted, a
worse one retired, too few nights wait, a miscalibrated or slice-hurting shadow is not promoted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.monitoring.shadow import Night, ShadowThresholds, decide

T = ShadowThresholds(nights=3, max_nights=6, slice_min_rows=100)


def _night(i: int, shadow_noise: float, champion_noise: float, shift: float = 0.0, n: int = 400) -> Night:
    """Flights whose lateness depends on a hidden signal; each model sees it with its own noise."""
    rng = np.random.default_rng(i)
    signal = rng.normal(size=n)
    late = (signal + rng.normal(scale=0.8, size=n) > 0.9).astype(int)

    def score(noise: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(signal + rng.normal(scale=noise, size=n) - 1.0)))

    frame = pd.DataFrame(
        {
            "flight_id": np.arange(n) + 1000 * i,
            "carrier": np.where(np.arange(n) % 2 == 0, "UA", "DL"),
            "late": late,
            "champion": score(champion_noise),
            "shadow": np.clip(score(shadow_noise) + shift, 0, 1),
        }
    )
    return Night(f"2013-06-{10 + i:02d}", n, frame)


def test_too_few_labelled_nights_wait():
    d = decide([_night(0, 0.2, 1.5), _night(1, 0.2, 1.5)], T)
    assert d["decision"] == "wait" and "2 of 3 labelled nights" in d["reasons"][0]


def test_a_clearly_better_shadow_is_promoted():
    d = decide([_night(i, 0.2, 1.5) for i in range(3)], T)
    assert d["decision"] == "promote", d["reasons"]
    assert d["shadow"]["roc_auc"] > d["champion"]["roc_auc"] and d["flights"] == 1200
    assert set(d["slices"]) == {"UA", "DL"}


def test_a_clearly_worse_shadow_is_retired():
    d = decide([_night(i, 1.5, 0.2) for i in range(3)], T)
    assert d["decision"] == "retire" and "worse by more than" in d["reasons"][0]


def test_a_better_ranked_but_miscalibrated_shadow_is_not_promoted():
    d = decide([_night(i, 0.2, 1.5, shift=0.3) for i in range(3)], T)
    assert d["decision"] == "wait"
    assert any("calibration gap" in r for r in d["reasons"]), d["reasons"]


def test_the_same_model_is_promoted_at_margin_zero_and_waits_with_a_margin():
    nights = [_night(i, 0.5, 0.5) for i in range(3)]
    for n in nights:
        n.frame["shadow"] = n.frame["champion"]
    assert decide(nights, T)["decision"] == "promote"
    stricter = ShadowThresholds(nights=3, max_nights=6, promote_margin=0.01, slice_min_rows=100)
    waiting = decide(nights, stricter)
    assert waiting["decision"] == "wait" and "not better by 0.01" in waiting["reasons"][0]


def test_a_shadow_that_never_earns_promotion_is_retired_at_max_nights():
    stricter = ShadowThresholds(nights=3, max_nights=4, promote_margin=0.01, slice_min_rows=100)
    nights = [_night(i, 0.5, 0.5) for i in range(4)]
    for n in nights:
        n.frame["shadow"] = n.frame["champion"]
    d = decide(nights, stricter)
    assert d["decision"] == "retire" and "4 nights without earning promotion" in d["reasons"][-1]


def test_a_shadow_that_hurts_one_carrier_is_not_promoted():
    nights = [_night(i, 0.2, 0.6) for i in range(3)]
    for n in nights:  # the shadow is better overall but scores DL flights at random
        dl = n.frame["carrier"] == "DL"
        n.frame.loc[dl, "shadow"] = np.random.default_rng(7).uniform(size=int(dl.sum()))
    d = decide(nights, ShadowThresholds(nights=3, max_nights=6, retire_margin=0.5, slice_min_rows=100))
    assert d["decision"] == "wait"
    assert any(r.startswith("carrier DL") for r in d["reasons"]), d["reasons"]
