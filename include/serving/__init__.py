"""Serving: model inputs at prediction time (the same for batch and online), the prediction log,
batch scoring, and the online service (FastAPI app, champion holder, flight index)."""
