"""Data for people (`seed --demo`) and for benchmarks (`seed --tasks N`)."""
