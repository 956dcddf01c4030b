"""Datasets (Human3.6M and MPII formats), the synthetic-people generator, transforms and targets."""
