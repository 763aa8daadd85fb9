"""Benchmarks of the model-service: `python -m bench` (or `make bench`)."""
