"""Where results go: ClickHouse tables (`clickhouse`) and Prometheus metrics (`metrics`)."""


class DataRejected(ValueError):
    """A sink refused records for what was in them (parse, type, range, constraint); retrying cannot help."""
