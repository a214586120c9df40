"""journeyflow: a customer-journey data pipeline on Airflow, dbt and Great Expectations."""
