"""The platform (docs/architecture.md §8): search spaces, prepare stage, Tuner assembly, resume, reports, cluster."""
