"""Serving: the features a model sees at prediction time, the prediction log, the online service."""
