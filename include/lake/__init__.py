"""The lake: interval-keyed partitions, atomic writes, conformed frames.
Depends on core only."""
