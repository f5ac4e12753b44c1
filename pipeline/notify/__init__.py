"""Getting alerts to people: the Alertmanager bridge and an example webhook receiver."""
