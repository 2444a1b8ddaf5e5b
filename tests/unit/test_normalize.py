"""Code columns made canonical before the checks: trim, then the declared case."""

from __future__ import annotations

import pandas as pd

from include.quality.normalize import normalize_codes
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES


def schedules(origins: list[str | None], carriers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "origin": pd.Series(origins, dtype="string"),
            "carrier": pd.Series(carriers, dtype="string"),
            "flight_number": pd.Series(range(len(carriers)), dtype="Int64"),
        }
    )


def test_codes_are_trimmed_and_upper_cased_and_counted():
    frame = schedules([" jfk", "LGA", "Ewr ", None], ["ua", "DL", "b6", "AA"])
    out, changed = normalize_codes(frame, FLIGHT_SCHEDULES)
    assert out["origin"].tolist()[:3] == ["JFK", "LGA", "EWR"] and pd.isna(out["origin"].iloc[3])
    assert out["carrier"].tolist() == ["UA", "DL", "B6", "AA"]
    assert changed == {"origin": 2, "carrier": 2}
    assert frame["origin"].iloc[0] == " jfk", "the input frame is left as it came"
    assert out["flight_number"].tolist() == [0, 1, 2, 3] and out.dtypes.equals(frame.dtypes)


def test_canonical_codes_change_nothing():
    frame = schedules(["JFK", "LGA"], ["UA", "DL"])
    out, changed = normalize_codes(frame, FLIGHT_SCHEDULES)
    assert changed == {} and out.equals(frame)


def test_status_is_lower_cased():
    frame = pd.DataFrame({"status": pd.Series(["Arrived", " cancelled", "diverted"], dtype="string")})
    out, changed = normalize_codes(frame, FLIGHT_OUTCOMES)
    assert out["status"].tolist() == ["arrived", "cancelled", "diverted"] and changed == {"status": 2}
