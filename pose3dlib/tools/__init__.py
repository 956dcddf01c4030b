"""Tools around the method: the command line, the notebook runner, sweeps, the ablation and the
benchmarks (`bench/`)."""
