"""Feature views: recent delay statistics per plane, carrier and route; weather per origin hour.

ttl bounds staleness: a statistic is recomputed every interval (day), so one older than 2 days
means ingestion stopped; an observation older than 3 h is not "the weather now". Past the ttl a
training row gets a missing value (and its missing indicator) instead of a stale number.
"""

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Float64, Int64

from include.features.engineering import CARRIER_STATS, PLANE_STATS, ROUTE_STATS, WEATHER_FEATURES, StatsSpec
from include.features.feature_repo.entities import carrier, dest, origin, plane
from include.features.feature_repo.sources import (
    carrier_delay_stats_source,
    origin_weather_source,
    plane_delay_stats_source,
    route_delay_stats_source,
)

STATS_TTL = timedelta(days=2)
WEATHER_TTL = timedelta(hours=3)


def _stats_view(spec: StatsSpec, entities: list, source) -> FeatureView:
    kinds = [Int64, Float64, Float64, Float64]
    return FeatureView(
        name=spec.name,
        entities=entities,
        ttl=STATS_TTL,
        schema=[Field(name=n, dtype=t) for n, t in zip(spec.feature_names, kinds, strict=True)],
        source=source,
        description=spec.description,
    )


plane_delay_stats = _stats_view(PLANE_STATS, [plane], plane_delay_stats_source)
carrier_delay_stats = _stats_view(CARRIER_STATS, [carrier], carrier_delay_stats_source)
route_delay_stats = _stats_view(ROUTE_STATS, [origin, dest], route_delay_stats_source)
origin_weather = FeatureView(
    name="origin_weather",
    entities=[origin],
    ttl=WEATHER_TTL,
    schema=[Field(name=n, dtype=Float64) for n in WEATHER_FEATURES],
    source=origin_weather_source,
    description="Latest hourly weather observed at the origin airport.",
)
