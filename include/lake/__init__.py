"""The lake: interval-keyed partitions written atomically (byte-identical reruns), conformed
frames, the storage they live on (a local folder or an object store, one code path), and the one
SQL engine helper of the project's own databases."""
