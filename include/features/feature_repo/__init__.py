"""The Feast feature repo: entities, sources, feature views, feature services (one concept per file).

`feast -c include/features/feature_repo ...` (see `make feast`) and include/features/store.py both read it.
"""
