"""Protections against hostile clients: document limits, cost limits, rate limits by cost."""
