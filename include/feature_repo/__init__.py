"""The Feast feature repo: entities, sources, feature views, feature services (one concept per file).

`feast -c include/feature_repo ...` (see `make feast`) and include/features/store.py both read it.
"""
