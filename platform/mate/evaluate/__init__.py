"""Evaluation: the frozen retrieval model, the optimal motion partition, T2M metrics with intervals, physical probes."""
