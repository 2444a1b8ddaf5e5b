"""The language a source is declared in: tables, columns and their logical types.

Plain dataclasses with no I/O. `include/source/dataset.py` declares the concrete tables with
them; the lake, the checks and the features are generic over these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LogicalType = Literal["int64", "float64", "string", "timestamp"]
TableKind = Literal["event", "reference", "feature"]
# How a code column is made canonical before it is checked: surrounding spaces trimmed, then
# upper or lower case (" jfk" is "JFK", not a new airport).
Normalize = Literal["upper", "lower"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: LogicalType
    nullable: bool = True
    description: str = ""
    normalize: Normalize | None = None


@dataclass(frozen=True)
class SourceTable:
    name: str
    kind: TableKind
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    event_time: str | None = None
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} declares no column {name!r}")
