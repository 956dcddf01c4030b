"""Datasets: loaders of the Human3.6M and MPII formats, their mix, transforms and targets;
`convert/` turns the official downloads into those formats."""
