"""Benchmarks: ``python -m minialexnet.bench layers`` times every AlexNet layer."""
