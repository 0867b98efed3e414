"""The platform (DESIGN 5): search-space files, the prepare stage, Tuner assembly, resume, reports, cluster."""
