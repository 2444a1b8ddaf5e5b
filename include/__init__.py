"""Domain code of airflow-mlops: plain modules, importable without Airflow and without side effects."""
