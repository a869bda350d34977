"""Measurement: goldset evaluation and benchmarks that print figures."""
