"""Evaluation and reporting: every protocol on the test splits, the MPI-INF-3DHP tables, the
README results table, accuracy against training wall-clock time."""
