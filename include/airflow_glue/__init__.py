"""The only package of include/ that imports Airflow: asset objects, connections looked up in
tasks, the failure callback and notifiers."""
