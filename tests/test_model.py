"""HourglassNet3D: parameter count, output shapes, the adaptive depth head, preprocessing, loading."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from pose3dlib.config import Config, ModelConfig, config_to_dict
from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
from pose3dlib.engine.errors import CheckpointError, ConfigError, DataError
from pose3dlib.model import HourglassNet3D, build_model, count_parameters, is_channels_last, load_model, preprocess

PAPER_PARAMETERS = 14_429_104  # docs/paper.md "Network": default network
SMALL = ModelConfig(num_stacks=2, num_modules=1, num_features=32, num_reg_modules=1)
# Hourglasses of depth 2 and a two-level depth head: at 64 px input both end on a 4 x 4 grid.
SHALLOW = ModelConfig(num_stacks=2, num_modules=1, num_features=32, num_reg_modules=1, hourglass_depth=2,
                      depth_head_levels=2)

torch.set_num_threads(1)


def _expected_parameters(cfg: ModelConfig) -> int:
    """Closed-form count from the layer list in docs/paper.md "Network" (independent of model.py)."""
    def conv(cin: int, cout: int, k: int = 1) -> int:
        return cin * cout * k * k + cout

    def bn(c: int) -> int:
        return 2 * c

    def residual(cin: int, cout: int) -> int:
        mid = cout // 2
        n = bn(cin) + conv(cin, mid) + bn(mid) + conv(mid, mid, 3) + bn(mid) + conv(mid, cout)
        return n + (conv(cin, cout) if cin != cout else 0)

    f, j, m = cfg.num_features, cfg.num_joints, cfg.num_modules
    r = cfg.stem_res_channels  # the paper's 128
    stem = conv(3, 64, 7) + bn(64) + residual(64, r) + residual(r, r) + residual(r, f)
    levels = cfg.hourglass_depth  # the paper's 4
    hourglass = (3 * levels + 1) * m * residual(f, f)  # 3 branches per level x its levels + the bottom
    stack = hourglass + m * residual(f, f) + conv(f, f) + bn(f) + conv(f, j) + conv(f, f) + conv(j, f)
    depth_head = cfg.depth_head_levels * cfg.num_reg_modules * residual(f, f) + (16 * f) * j + j
    return stem + cfg.num_stacks * stack + depth_head


def test_paper_network_has_the_paper_parameter_count():
    model = HourglassNet3D(ModelConfig())
    assert count_parameters(model) == PAPER_PARAMETERS
    assert _expected_parameters(ModelConfig()) == PAPER_PARAMETERS  # the closed form agrees with the paper


def test_parameter_count_matches_closed_form_for_other_layouts():
    for cfg in (SMALL, ModelConfig(num_stacks=1, num_modules=2, num_features=64, num_reg_modules=2, num_joints=14),
                SHALLOW, ModelConfig(num_stacks=1, num_modules=1, num_features=32, num_reg_modules=1,
                                     hourglass_depth=1, depth_head_levels=3),
                replace(SMALL, stem_res_channels=16), replace(SMALL, num_stacks=1, stem_res_channels=64)):
        assert count_parameters(build_model(cfg)) == _expected_parameters(cfg)


@pytest.mark.parametrize("name,value", [("hourglass_depth", 0), ("hourglass_depth", 5), ("depth_head_levels", 0),
                                        ("depth_head_levels", 5)])
def test_shallow_layouts_out_of_range_are_refused(name, value):
    with pytest.raises(ConfigError, match=f"model.{name} must be 1..4"):
        build_model(replace(SMALL, **{name: value}))


@pytest.mark.parametrize("name,value", [("stem_res_channels", 63), ("num_features", 33)])
def test_odd_bottleneck_channels_are_refused(name, value):
    with pytest.raises(ConfigError, match=f"model.{name} must be even"):
        build_model(replace(SMALL, **{name: value}))


def test_stem_res_channels_sets_the_stem_residuals():
    stem = build_model(replace(SMALL, stem_res_channels=24)).stem
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        half = stem.res1(F.relu(stem.bn(stem.conv(x))))
        out = stem(x)
    assert half.shape == (2, 24, 32, 32)  # the first residual, at S/2
    assert stem.res2.conv2.weight.shape[:2] == (12, 12)  # bottleneck of R -> R
    assert out.shape == (2, SMALL.num_features, 16, 16)


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("layout", ["small", "shallow"])
def test_output_shapes_for_any_multiple_of_64(size, layout):
    cfg = SMALL if layout == "small" else SHALLOW
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size))
    assert set(out) == {"heatmaps", "depth"}
    assert len(out["heatmaps"]) == cfg.num_stacks
    for h in out["heatmaps"]:
        assert h.shape == (2, 16, size // 4, size // 4)
    assert out["depth"].shape == (2, 16)
    assert torch.isfinite(out["depth"]).all()


def test_default_network_runs_at_64():
    with torch.no_grad():
        out = build_model(ModelConfig()).eval()(torch.rand(1, 3, 64, 64))
    assert [h.shape for h in out["heatmaps"]] == [(1, 16, 16, 16)] * 2 and out["depth"].shape == (1, 16)


def _depth_head_grid(model: HourglassNet3D, x: torch.Tensor) -> torch.Tensor:
    grids = []
    handle = model.depth_head.levels.register_forward_hook(lambda m, i, o: grids.append(o))
    with torch.no_grad():
        depth = model(x)["depth"]
    handle.remove()
    return depth, grids[0]


def test_depth_head_reads_the_grid_directly_at_256_and_repeats_cells_at_128():
    model = build_model(SMALL).eval()
    depth, grid = _depth_head_grid(model, torch.rand(1, 3, 256, 256))
    assert grid.shape == (1, 32, 4, 4)
    lin = model.depth_head.linear
    torch.testing.assert_close(depth, grid.reshape(1, -1) @ lin.weight.T + lin.bias)
    depth, grid = _depth_head_grid(model, torch.rand(1, 3, 128, 128))
    assert grid.shape == (1, 32, 2, 2)
    repeated = grid.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # (1, 32, 4, 4)
    torch.testing.assert_close(depth, repeated.reshape(1, -1) @ lin.weight.T + lin.bias)


def test_channels_last_gives_the_same_outputs():
    model = build_model(SMALL).eval()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        ref = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out["depth"], ref["depth"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["heatmaps"][-1], ref["heatmaps"][-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channels_last", [True, False])
def test_load_model_keeps_the_training_memory_format_and_predict_follows_it(tmp_path, channels_last):
    from dataclasses import replace

    from pose3dlib.evaluation.evaluate import predict

    torch.manual_seed(0)
    model = build_model(SMALL)
    cfg = Config(model=SMALL)
    cfg = replace(cfg, train=replace(cfg.train, channels_last=channels_last))
    path = save_checkpoint(tmp_path / "m.pt", make_checkpoint(model_state=model.state_dict(), config=config_to_dict(cfg)))
    loaded, _ = load_model(path)
    assert is_channels_last(loaded) is channels_last
    assert not is_channels_last(model.eval())
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        got, ref = predict(loaded, images, cfg.model.input_format), predict(model, images, cfg.model.input_format)
    torch.testing.assert_close(got["depth"], ref["depth"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["heatmaps"], ref["heatmaps"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_every_parameter_gets_a_gradient(train):
    """Every parameter gets a finite gradient, non-zero wherever the loss depends on it.

    In training a batch norm subtracts each channel's batch mean, so a conv bias right before one
    gets only rounding noise: there every parameter but the conv biases must move. In eval mode
    (running statistics, an affine map) every parameter must.
    """
    torch.manual_seed(0)
    model = build_model(SMALL).train(train)
    out = model(torch.rand(2, 3, 64, 64))
    (sum(h.square().mean() for h in out["heatmaps"]) + out["depth"].square().mean()).backward()
    params = dict(model.named_parameters())
    assert not [n for n, p in params.items() if p.grad is None]
    assert not [n for n, p in params.items() if not torch.isfinite(p.grad).all()]
    conv_biases = {f"{m}.bias" for m, mod in model.named_modules() if isinstance(mod, torch.nn.Conv2d)}
    must_move = [n for n in params if not (train and n in conv_biases)]
    assert not [n for n in must_move if not params[n].grad.any()]


@pytest.mark.parametrize("shape", [(1, 3, 100, 100), (1, 3, 64, 128), (1, 1, 64, 64)])
def test_bad_input_shape_is_refused(shape):
    with pytest.raises(DataError, match="multiple of 64"):
        build_model(SMALL)(torch.rand(*shape))


def test_preprocess_formats():
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    rgb = preprocess(images, "rgb")
    assert rgb.dtype == torch.float32 and rgb.device == images.device
    torch.testing.assert_close(rgb, images.double().div(255).float())
    bgr = preprocess(images, "bgr256")
    for c in range(3):  # channel c of the BGR input is channel 2 - c of the RGB image
        torch.testing.assert_close(bgr[:, c], images[:, 2 - c].double().div(256).float())


def test_preprocess_refuses_unknown_format_and_float_images():
    images = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="'bgr255'"):
        preprocess(images, "bgr255")
    with pytest.raises(DataError, match="uint8"):
        preprocess(images.float(), "rgb")
    with pytest.raises(ConfigError, match="input_format"):
        build_model(ModelConfig(input_format="yuv"))


def test_load_model_round_trip(tmp_path):
    cfg = Config(profile="test", model=SMALL)
    model = build_model(cfg.model)
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval() mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    path = save_checkpoint(tmp_path / "m.pt", make_checkpoint(model_state=model.state_dict(), config=config_to_dict(cfg)))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():  # load_model returns the model in training's memory format (channels_last)
        ref = model.to(memory_format=torch.channels_last)(x)
    for source in (path, torch.load(path, weights_only=True)):
        loaded, loaded_cfg = load_model(source)
        assert not loaded.training and loaded_cfg == cfg
        for name, tensor in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], tensor), name
        with torch.no_grad():
            out = loaded(x)
        torch.testing.assert_close(out["depth"], ref["depth"], rtol=0, atol=0)


def test_an_older_checkpoint_config_gets_the_new_keys_defaults(tmp_path):
    """A config key added after a checkpoint was written must not make its run look stale."""
    from pose3dlib.engine.checkpoint import load_checkpoint
    from pose3dlib.engine.train import config_differences

    cfg = Config(profile="test", model=SMALL)
    old_config = config_to_dict(cfg)
    del old_config["train"]["bf16_on_cpu"]  # as written before the key existed
    path = save_checkpoint(tmp_path / "old.pt", make_checkpoint(model_state=build_model(SMALL).state_dict(),
                                                                config=old_config))
    loaded = load_checkpoint(path)["config"]
    assert loaded["train"]["bf16_on_cpu"] is False
    assert config_differences(loaded, config_to_dict(cfg)) == []
    assert config_differences(old_config, config_to_dict(cfg)) == ["train.bf16_on_cpu: None -> False"]


def test_load_model_refuses_weights_of_another_layout(tmp_path):
    weights = build_model(SMALL).state_dict()
    cfg = Config(model=ModelConfig(num_stacks=2, num_modules=1, num_features=64, num_reg_modules=1))
    with pytest.raises(CheckpointError, match="num_features=64"):
        load_model(make_checkpoint(model_state=weights, config=config_to_dict(cfg)))
    del weights["depth_head.linear.bias"]
    with pytest.raises(CheckpointError, match="depth_head.linear.bias"):
        load_model(make_checkpoint(model_state=weights, config=config_to_dict(Config(model=SMALL))))
    # a dict read from a file: errors name the file given as `source`
    with pytest.raises(CheckpointError, match=r"^runs/x/stage3/last\.pt: weights do not match"):
        load_model(make_checkpoint(model_state=weights, config=config_to_dict(Config(model=SMALL))),
                   source="runs/x/stage3/last.pt")


def test_flatten_order_is_channel_major():
    """The depth head's Linear reads its 4x4 grid in (C, H, W) order, as the original's view(B, -1) did
    (needed for its weights), also on channels_last features (training's memory format)."""
    torch.manual_seed(0)
    j, f = SHALLOW.num_joints, SHALLOW.num_features
    head = build_model(SHALLOW).depth_head.eval().double().to(memory_format=torch.channels_last)
    feats = torch.randn(2, f, 16, 16, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = head(feats)
        grid = head.levels(feats)  # two residual + max-pool levels: 16 x 16 -> the 4 x 4 grid, no adaptive pooling
        assert grid.shape == (2, f, 4, 4) and grid.is_contiguous(memory_format=torch.channels_last)
        weight = head.linear.weight.view(j, f, 4, 4)  # channel-major: input column c * 16 + h * 4 + w
        expected = torch.einsum("bchw,jchw->bj", grid, weight) + head.linear.bias
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
