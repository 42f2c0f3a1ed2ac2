"""Persisted and trusted documents: operations sent by id (README, Persisted documents)."""
