"""The MLflow model registry: tracking helpers (aliases, runs, models), deployment and rollback
of the champion alias, and the model card of every version (card/)."""
