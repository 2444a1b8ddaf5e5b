"""The only package of include/ that imports Airflow: asset objects and event extras, connections
looked up in tasks (Feast online store, source database), run context, the failure callback, notifiers."""
