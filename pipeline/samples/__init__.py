"""Bundled sample stream: hand-written templates plus a seeded generator (`generate.py`)."""
