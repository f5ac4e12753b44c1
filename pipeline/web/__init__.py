"""Built-in live dashboard served by the worker in embedded mode (for users without Grafana)."""
