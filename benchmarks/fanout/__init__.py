"""The 1 -> 10 -> 1 fan-out the benchmark suite runs."""
