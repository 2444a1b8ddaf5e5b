"""Sources: the feature partitions that ingest_flights' validated data is turned into.

One folder per feature table under `<lake>/features/`, one parquet file per interval
(include/features/partitions.py writes them). The lake root is configuration (MLOPS_LAKE_ROOT).
"""

from feast import FileSource
from feast.data_format import ParquetFormat

from include.core.settings import get_settings
from include.features.engineering import EVENT_TIMESTAMP, FEATURE_TABLES
from include.features.partitions import feature_source_dir, offline_store_path
from include.lake import storage

LAKE_ROOT = get_settings().lake_root
"""The lake these sources read, fixed when the module is imported (Feast's CLI imports it);
include/features/store.py `definitions` rebuilds the repo when the configured lake changes."""


def _source(table: str) -> FileSource:
    return FileSource(
        name=f"{table}_source",
        path=offline_store_path(storage.join(feature_source_dir(LAKE_ROOT, table), "*", "*.parquet")),
        file_format=ParquetFormat(),
        timestamp_field=EVENT_TIMESTAMP,
        description=FEATURE_TABLES[table].description,
    )


plane_delay_stats_source = _source("plane_delay_stats")
carrier_delay_stats_source = _source("carrier_delay_stats")
route_delay_stats_source = _source("route_delay_stats")
origin_weather_source = _source("origin_weather")
