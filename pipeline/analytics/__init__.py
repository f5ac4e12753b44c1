"""Analytics over the ClickHouse tables: dashboard views, Grafana generation, account reports."""
