"""Run machinery: the training loop and its stages, checkpoints, run folders and locks, devices,
distributed training, progress bars, metric logs, project paths, errors and atomic file writes."""
