"""Every Feast object of the repo, gathered for `feast apply` / `feast plan` and for our tasks.

The definitions live one concept per file beside this one; this file only lists them.
"""

from include.features.feature_repo.entities import carrier, dest, origin, plane
from include.features.feature_repo.feature_services import flight_delay_v1
from include.features.feature_repo.feature_views import (
    carrier_delay_stats,
    origin_weather,
    plane_delay_stats,
    route_delay_stats,
)
from include.features.feature_repo.sources import (
    carrier_delay_stats_source,
    origin_weather_source,
    plane_delay_stats_source,
    route_delay_stats_source,
)

ENTITIES = [plane, carrier, origin, dest]
SOURCES = [
    plane_delay_stats_source,
    carrier_delay_stats_source,
    route_delay_stats_source,
    origin_weather_source,
]
FEATURE_VIEWS = [plane_delay_stats, carrier_delay_stats, route_delay_stats, origin_weather]
FEATURE_SERVICES = [flight_delay_v1]
