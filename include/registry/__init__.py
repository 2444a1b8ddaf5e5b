"""The MLflow model registry: tracking helpers, deployment and rollback, model cards."""
