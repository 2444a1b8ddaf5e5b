"""Features: pure feature engineering, interval partitions, the Feast store and repo
(feature_repo/), point-in-time training sets, and the checks of materialize_features."""
