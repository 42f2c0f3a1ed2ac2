"""The benchmark harness: `make bench` (see README, Performance)."""
