"""The 5-task chain the orchestration and choreography benchmarks run."""
