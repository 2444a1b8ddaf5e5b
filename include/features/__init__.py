"""Features: engineering (pure), feature partitions in the lake, the Feast store, training sets."""
