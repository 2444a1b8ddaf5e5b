"""Entities: what features are about. Join keys are the columns of the flight schedule."""

from feast import Entity, ValueType

plane = Entity(
    name="plane", join_keys=["tailnum"], value_type=ValueType.STRING, description="A plane by tail number."
)
carrier = Entity(
    name="carrier", join_keys=["carrier"], value_type=ValueType.STRING, description="Airline code."
)
origin = Entity(
    name="origin", join_keys=["origin"], value_type=ValueType.STRING, description="Origin airport."
)
dest = Entity(
    name="dest", join_keys=["dest"], value_type=ValueType.STRING, description="Destination airport."
)
