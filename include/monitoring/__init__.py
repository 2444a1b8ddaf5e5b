"""Nightly monitoring: drift statistics and the policy (pure), the tables and MLflow records,
the steps of monitor_model, and the HTML report."""
