"""pose3d: weakly-supervised 3D human pose estimation in the wild (Zhou et al., ICCV 2017).

The files at this level are the paper's method, and the typed config that sets it up:

    skeleton   joint orders, bones, bone groups, flip pairs
    camera     projection, camera frames, crop transforms
    model      the stacked hourglass with its depth-regression module; load_model
    losses     heatmap, depth and geometric (bone-length ratio) losses
    decode     heatmaps -> 2D joints; 2D + depth -> 3D millimetres
    metrics    MPJPE protocols, PCKh, 3DPCK / AUC
    config     frozen dataclasses for every knob, YAML + dotted overrides

Everything else lives in a folder named by its role (docs/architecture.md maps every module):

    data/        datasets in the Human3.6M / MPII formats, and converters of the official downloads
    synthetic/   the synthetic-people generator that writes those formats
    engine/      run machinery: training loop, checkpoints, run folders, devices, files
    evaluation/  test-split evaluation, protocols, the README table, time to accuracy
    plots/       skeleton figures and training curves
    inference/   the demo on your own photos, folders and videos; exports; ONNX
    original/    checkpoints of the original release
    tools/       the command line, notebook runner, sweeps, the ablation, benchmarks
"""

__version__ = "0.1.0"
