"""The lake: interval-keyed partitions written atomically (byte-identical reruns), conformed
frames, and the one SQL engine helper of the project's own databases."""
