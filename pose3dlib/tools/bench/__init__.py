"""Speed benchmarks (`make bench`): FLOP counting, timed metrics, bench.json and docs/benchmarks.md.

    python -m pose3dlib bench [--quick] [--out runs/bench/bench.json] [--doc docs/benchmarks.md]

(`python -m pose3dlib.tools.bench` runs the same with the C library's allocator instead of training's.)

Modules: `flops` (multiply-add counting), `loop_loss` (the per-sample loop form of the
geometric loss, kept only for comparison), `timing` (warm-up + median), `measure` (one
function per metric), `step_process` (training steps in a fresh process: peak_rss_mb and
the wait-policy switch), `threads` (OpenMP wait policy), `report` (JSON and markdown),
`command` (the CLI that runs them all).
"""
