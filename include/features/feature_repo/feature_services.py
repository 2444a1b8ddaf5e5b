"""Feature services: the versioned feature sets a model is trained and served with.

Never change a published service: add `flight_delay_v2` and train on it, so a model's lineage
(the service name logged with it) always describes the features it was trained with.
"""

from feast import FeatureService

from include.features.feature_repo.feature_views import (
    carrier_delay_stats,
    origin_weather,
    plane_delay_stats,
    route_delay_stats,
)

flight_delay_v1 = FeatureService(
    name="flight_delay_v1",
    features=[plane_delay_stats, carrier_delay_stats, route_delay_stats, origin_weather],
    description="P(arrival delay >= 15 min) at scheduling time: plane/carrier/route history, origin weather.",
)
