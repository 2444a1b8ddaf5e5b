"""Code columns made canonical before they are checked (pure: frames in, frames out).

Each column declares its rule in include/source/dataset.py (`normalize`): surrounding spaces are
trimmed, then the value is upper- or lower-cased. Without it " jfk" or "Jfk" would become new
airports, and a flight's features would be joined to nothing. The raw zone keeps every value as
it came; the validated zone holds the canonical one, and the validation summary counts how many
values of each column were changed, so a source that starts sending lower case is visible.
"""

from __future__ import annotations

import pandas as pd

from include.core.schema import SourceTable


def normalize_codes(frame: pd.DataFrame, table: SourceTable) -> tuple[pd.DataFrame, dict[str, int]]:
    """The frame with each declared column canonical, and the number of values changed per column
    (columns with no change left out). Nulls stay null; the input frame is not modified."""
    out = frame.copy()
    changed: dict[str, int] = {}
    for col in table.columns:
        if col.normalize is None or col.name not in out.columns:
            continue
        values = out[col.name].astype("string")
        trimmed = values.str.strip()
        canonical = trimmed.str.upper() if col.normalize == "upper" else trimmed.str.lower()
        n = int((canonical != values).fillna(False).sum())
        if n:
            out[col.name] = canonical.astype(frame[col.name].dtype)
            changed[col.name] = n
    return out, changed
