"""airflow-mlops' code, one package per lifecycle stage in dependency order: core, lake, source,
quality, features, registry, training, serving, monitoring, oncall; airflow_glue alone imports Airflow."""
