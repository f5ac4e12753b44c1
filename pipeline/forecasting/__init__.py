"""Forecasts of every watch key, topic, country and public's attitude toward China, and the
warnings they raise (README, "Forecasts"): model, series queries, refit, timer, API."""
