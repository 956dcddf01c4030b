"""Official dataset downloads -> the release formats the loaders read (`convert-h36m`, `convert-mpii`, `convert-3dhp`)."""
