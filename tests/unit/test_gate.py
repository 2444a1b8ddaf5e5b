"""The deployment gate: every check can fail on its own, and the decision says why."""

from __future__ import annotations

import pytest

from include.training.gate import GateThresholds, ModelEvidence, decide

GOOD = ModelEvidence(0.70, {"carrier=UA": (0.68, 1000), "origin=EWR": (0.69, 900)})
CHAMPION = ModelEvidence(0.69, {"carrier=UA": (0.67, 1000), "origin=EWR": (0.70, 900)})


def run(candidate=GOOD, baseline=0.60, champion=CHAMPION, signature_ok=True, size_mb=5.0, latency_ms=3.0):
    return decide(candidate, baseline, champion, signature_ok, size_mb, latency_ms)


def test_a_good_candidate_deploys():
    decision = run()
    assert decision.passed and decision.reasons == []
    assert "decision: DEPLOY" in decision.as_table()


def test_the_first_model_skips_champion_checks_but_not_the_rest():
    decision = run(champion=None)
    assert decision.passed
    assert not any("champion" in c.name or "regression" in c.name for c in decision.checks)
    assert not run(champion=None, candidate=ModelEvidence(0.55)).passed


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        ({"candidate": ModelEvidence(0.59), "baseline": 0.5, "champion": None}, "absolute_floor"),
        ({"baseline": 0.69}, "beats_baseline"),
        ({"champion": ModelEvidence(0.71)}, "not_worse_than_champion"),
        ({"candidate": ModelEvidence(0.70, {"carrier=B6": (0.50, 500)})}, "slice_floor[carrier=B6]"),
        (
            {"candidate": ModelEvidence(0.70, {"origin=EWR": (0.66, 900)})},
            "slice_regression[origin=EWR]",
        ),
        ({"signature_ok": False}, "signature"),
        ({"size_mb": 80.0}, "size"),
        ({"latency_ms": 120.0}, "latency"),
    ],
)
def test_each_check_rejects_on_its_own(kwargs, failed):
    decision = run(**kwargs)
    assert not decision.passed
    assert [r.split(":")[0] for r in decision.reasons] == [failed]
    assert "decision: REJECT" in decision.as_table() and "FAIL" in decision.as_table()


def test_small_slices_are_not_judged():
    decision = run(candidate=ModelEvidence(0.70, {"carrier=OO": (0.10, 12)}))
    assert decision.passed and not any("OO" in c.name for c in decision.checks)


def test_thresholds_live_in_one_place_and_are_recorded():
    strict = GateThresholds(min_roc_auc=0.75)
    decision = decide(GOOD, 0.6, None, True, 5.0, 3.0, strict)
    assert not decision.passed and "0.7500" in decision.reasons[0]
    assert decision.as_dict()["checks"][0] == {
        "name": "absolute_floor",
        "passed": False,
        "detail": "ROC AUC 0.7000 >= 0.7500",
    }


def test_ties_pass_every_comparison():
    t = GateThresholds()
    at_floor = ModelEvidence(t.min_roc_auc, {"carrier=UA": (t.slice_floor_roc_auc, 1000)})
    decision = decide(
        at_floor, t.min_roc_auc - t.baseline_margin, None, True, t.max_size_mb, t.max_latency_ms
    )
    assert decision.passed, decision.reasons
    same = run(candidate=CHAMPION, champion=CHAMPION)  # retraining on the same data
    assert same.passed, same.reasons


def test_a_slice_missing_on_one_side_is_reported_not_invented():
    only_champion = ModelEvidence(0.69, {**CHAMPION.slices, "carrier=WN": (0.80, 400)})
    decision = run(champion=only_champion)
    assert decision.passed and not any("WN" in c.name for c in decision.checks)
    new_slice = ModelEvidence(0.70, {**GOOD.slices, "carrier=F9": (0.60, 300)})
    decision = run(candidate=new_slice)
    names = [c.name for c in decision.checks]
    assert "slice_floor[carrier=F9]" in names and "slice_regression[carrier=F9]" not in names


def test_the_decision_as_json_lists_every_check():
    import json

    decision = run(champion=ModelEvidence(0.71))
    record = decision.as_dict()
    assert record["passed"] is False
    assert [c["name"] for c in record["checks"]] == [c.name for c in decision.checks]
    assert json.loads(json.dumps(record)) == record  # plain JSON types (XCom, gate_decision.json)
