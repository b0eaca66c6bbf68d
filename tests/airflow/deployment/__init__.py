"""The real-deployment test of the Airflow provider (processes, REST API, triggerer, a killed task)."""
