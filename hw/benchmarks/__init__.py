"""Benchmarks of the hardware layer and below (`skillstack bench control`)."""
