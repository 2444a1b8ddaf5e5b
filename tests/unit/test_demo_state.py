from datetime import date

from scripts.demo_state import interval_states, wanted_intervals


def test_wanted_intervals_are_the_last_complete_days():
    days = wanted_intervals(date(2026, 11, 23), 3)
    assert days == [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]


def test_success_wins_over_failed_attempts():
    runs = [
        {"data_interval_start": "2026-11-20T00:00:00Z", "state": "failed"},
        {"data_interval_start": "2026-11-20T00:00:00Z", "state": "success"},
        {"data_interval_start": "2026-11-21T00:00:00+00:00", "state": "running"},
    ]
    assert interval_states(runs) == {date(2026, 11, 20): "success", date(2026, 11, 21): "running"}


class FakeAPI:
    """materialize_features as the API shows it: one run verified day 1, day 2's event was lost;
    a triggered run verifies day 2."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict]] = []
        self.runs = [{"dag_run_id": "r1", "state": "success"}]
        self.verified = {"r1": [["2026-12-01T00:00:00+00:00", "2026-12-02T00:00:00+00:00"]]}

    def dag_runs(self, dag_id: str) -> list[dict]:
        return list(self.runs)

    def get(self, path: str) -> dict:
        run_id = path.split("/dagRuns/")[1].split("/")[0]
        return {"value": {"intervals": self.verified.get(run_id, [])}}

    def post(self, path: str, body: dict) -> dict:
        self.posted.append((path, body))
        self.runs.append({"dag_run_id": body["dag_run_id"], "state": "success"})
        self.verified[body["dag_run_id"]] = [["2026-12-02T00:00:00+00:00", "2026-12-03T00:00:00+00:00"]]
        return {}


def test_an_idle_features_dag_with_a_day_missing_gets_one_catch_up_run(monkeypatch):

    from scripts import demo_state

    monkeypatch.setattr(demo_state, "STALL_S", 0.0)
    monkeypatch.setattr(demo_state.time, "sleep", lambda s: None)
    api = FakeAPI()
    assert demo_state.wait_for_features(api, [date(2026, 12, 1), date(2026, 12, 2)], timeout=60) == 0
    assert len(api.posted) == 1 and api.posted[0][0] == "/api/v2/dags/materialize_features/dagRuns"
    assert api.posted[0][1]["logical_date"] is None


def test_a_features_dag_with_every_day_online_gets_no_catch_up_run(monkeypatch):

    from scripts import demo_state

    monkeypatch.setattr(demo_state, "STALL_S", 0.0)
    api = FakeAPI()
    assert demo_state.wait_for_features(api, [date(2026, 12, 1)], timeout=60) == 0
    assert api.posted == []
