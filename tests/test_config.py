"""pose3dlib.config: YAML loading, dotted overrides, errors naming key and type, dump/load round trip."""
from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from pose3dlib.config import (
    Config,
    StageConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)
from pose3dlib.engine.errors import ConfigError
from pose3dlib.engine.paths import CONFIG_DIR

PROFILES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def write_yaml(tmp_path, data) -> str:
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


# ----------------------------------------------------------------------------- the shipped configs

def test_the_three_profiles_exist() -> None:
    assert {"smoke", "cpu", "paper"} <= set(PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_configs_load(profile: str) -> None:
    cfg = load_config(f"configs/{profile}.yaml")  # project-relative path
    assert isinstance(cfg, Config) and cfg.profile == profile
    assert cfg.data.input_size == 4 * cfg.data.heatmap_size
    raw = yaml.safe_load((CONFIG_DIR / f"{profile}.yaml").read_text())
    # every value written in the file reaches the config unchanged
    for section in ("data", "model", "eval"):
        for key, value in (raw.get(section) or {}).items():
            assert getattr(getattr(cfg, section), key) == value, f"{profile}: {section}.{key}"


def test_paper_profile_has_paper_values() -> None:
    cfg = load_config("configs/paper.yaml")
    assert (cfg.model.num_stacks, cfg.model.num_features, cfg.train.batch_size) == (2, 256, 6)
    assert cfg.train.stage3.lr == 2.5e-5 and cfg.train.stage3.geometric_weight == 0.01
    assert cfg.train.stage2.lr_drop_epochs == (25,)
    assert cfg.eval.paper_bone_sum_mm == 4296.99


# ----------------------------------------------------------------------------- YAML and overrides

def test_yaml_values_and_defaults(tmp_path) -> None:
    path = write_yaml(tmp_path, {"seed": 3, "train": {"batch_size": 4, "stage2": {"lr_drop_epochs": [2, 5]}}})
    cfg = load_config(path)
    assert cfg.seed == 3 and cfg.train.batch_size == 4
    assert cfg.train.stage2.lr_drop_epochs == (2, 5)  # lists become tuples
    # a stage given in YAML keeps the rest of that stage's defaults (TrainConfig's stage 2, not StageConfig's)
    assert (cfg.train.stage2.depth_weight, cfg.train.stage2.ratio_3d) == (0.1, 1.0)
    assert cfg.train.stage1 == Config().train.stage1  # untouched sections keep the dataclass defaults
    assert load_config(write_yaml(tmp_path, {})) == Config()


def test_dotted_overrides() -> None:
    cfg = load_config(
        "configs/smoke.yaml",
        overrides=["train.stage1.lr=2.5e-4", "train.batch_size=3", "eval.flip_test=false",
                   "train.stage2.lr_drop_epochs=[1, 2]", "data.h36m_dir=elsewhere/h36m", "train.stage1.epochs=7"],
    )
    assert cfg.train.stage1.lr == 2.5e-4 and isinstance(cfg.train.stage1.lr, float)
    assert cfg.train.batch_size == 3 and cfg.eval.flip_test is False
    assert cfg.train.stage2.lr_drop_epochs == (1, 2)
    assert cfg.data.h36m_dir == "elsewhere/h36m"
    assert cfg.train.stage1.epochs == 7
    assert cfg.train.stage2.lr == load_config("configs/smoke.yaml").train.stage2.lr  # others untouched


def test_int_is_accepted_for_float_but_not_bool_for_int() -> None:
    assert load_config(None, ["train.stage1.lr=1"]).train.stage1.lr == 1.0
    with pytest.raises(ConfigError, match=r"'train\.batch_size'.*expected int"):
        load_config(None, ["train.batch_size=true"])


# ----------------------------------------------------------------------------- errors name the key and type

def test_unknown_key_in_yaml_names_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.stage1\.learning_rate'"):
        load_config(write_yaml(tmp_path, {"train": {"stage1": {"learning_rate": 1.0}}}))
    with pytest.raises(ConfigError, match=r"unknown config key 'colour'"):
        load_config(write_yaml(tmp_path, {"colour": "red"}))


def test_unknown_key_in_override_names_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.lr'"):
        load_config("configs/smoke.yaml", ["train.lr=1e-3"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config("configs/smoke.yaml", ["train.batch_size"])


def test_an_override_without_a_value_says_how_to_write_an_empty_text() -> None:
    """`--set data.lab_val_dir=$DIR` with DIR unset: YAML reads no value as null; the error says so and gives the
    empty text's spelling, which is accepted."""
    with pytest.raises(ConfigError, match=r"expected str, got None \(no value after '=': an unset shell variable\? "
                                          r"an empty text is data\.lab_val_dir=\"\", in a shell "
                                          r"--set 'data\.lab_val_dir=\"\"'\)"):
        load_config("configs/smoke.yaml", ["data.lab_val_dir="])
    assert load_config("configs/smoke.yaml", ['data.lab_val_dir=""']).data.lab_val_dir == ""
    with pytest.raises(ConfigError, match=r"expected float, got 'x'") as e:  # a value given: no such hint
        load_config("configs/smoke.yaml", ["train.stage1.lr=x"])
    assert "no value after" not in str(e.value)


def test_overrides_given_as_text_are_refused_with_the_yaml_form() -> None:
    """papermill's `-p overrides x=y` hands the notebook a str: refused as a whole, not read letter by letter."""
    for overrides in ("train.stage3.geometric_weight=0.1", '["train.stage3.geometric_weight=0.1"]', None):
        with pytest.raises(ConfigError, match=r"overrides must be a list .*-y 'overrides: \["):
            load_config("configs/smoke.yaml", overrides)
    with pytest.raises(ConfigError, match=r"override 5 is not text \(int\)"):
        load_config("configs/smoke.yaml", [5])
    assert load_config("configs/smoke.yaml", ("train.stage3.geometric_weight=0.1",)).train.stage3.geometric_weight == 0.1


@pytest.mark.parametrize(
    "override, key, type_name",
    [
        ("train.batch_size=abc", "train.batch_size", "int"),
        ("train.batch_size=1.5", "train.batch_size", "int"),
        ("train.stage1.lr=fast", "train.stage1.lr", "float"),
        ("eval.flip_test=1", "eval.flip_test", "bool"),
        ("model.input_format=3", "model.input_format", "str"),
        ("train.stage2.lr_drop_epochs=[3, x]", "train.stage2.lr_drop_epochs[1]", "int"),
        ("train.stage2.lr_drop_epochs=5", "train.stage2.lr_drop_epochs", "list"),
        ("train.stage1=3", "train.stage1", "mapping"),
    ],
)
def test_wrong_type_names_key_and_type(override: str, key: str, type_name: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("configs/smoke.yaml", [override])
    msg = str(err.value)
    assert repr(key) in msg and type_name in msg, msg
    assert msg.startswith(f"override {override!r}: ") and "smoke.yaml" not in msg, msg  # the override, not the file


def test_wrong_type_in_yaml_names_key_and_type(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"'data\.sigma': expected float"):
        load_config(write_yaml(tmp_path, {"data": {"sigma": "wide"}}))


def test_file_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_an_override_value_cut_by_a_yaml_comment_is_refused() -> None:
    """--set "data.wild_test_dir=/tmp/w s/wild #1" was read as '/tmp/w s/wild' (then 'folder not found' for a
    folder never named); a '#' inside the value that YAML keeps stays."""
    with pytest.raises(ConfigError, match=r"override 'data.wild_test_dir=/tmp/w s/wild #1': value '/tmp/w s/wild #1': "
                                          r"YAML reads a '#' after a space as the start of a comment"):
        load_config("configs/smoke.yaml", ["data.wild_test_dir=/tmp/w s/wild #1"])
    assert load_config("configs/smoke.yaml", ["data.wild_test_dir=/tmp/w s/wild#1"]).data.wild_test_dir == "/tmp/w s/wild#1"
    assert load_config("configs/smoke.yaml", ["data.wild_test_dir='/tmp/w s/wild #1'"]).data.wild_test_dir == "/tmp/w s/wild #1"
    with pytest.raises(ConfigError, match=r"YAML reads a '#'.*--set \"key='...'\""):  # the kept '#' hid the comment
        load_config("configs/smoke.yaml", ["data.wild_test_dir=/tmp/a#b #c"])


def test_numeric_looking_text_override_of_a_text_key_is_kept_as_written() -> None:
    """Override values are read with YAML rules (config._parse_scalar) and then checked against the key's type:
    '1-2' is YAML text, so a text key (a folder) keeps it as written; a value YAML reads as a number is
    not text, and is refused naming the override rather than turned into a folder name."""
    assert load_config("configs/smoke.yaml", ["data.h36m_dir=1-2"]).data.h36m_dir == "1-2"
    with pytest.raises(ConfigError, match=r"override 'data.h36m_dir=12': config key 'data.h36m_dir': expected str"):
        load_config("configs/smoke.yaml", ["data.h36m_dir=12"])


# ----------------------------------------------------------------------------- frozen, dump, round trip

def test_configs_are_frozen() -> None:
    cfg = load_config("configs/smoke.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    assert cfg.train.stage(3) is cfg.train.stage3
    with pytest.raises(ConfigError, match="stage must be 1, 2 or 3"):
        cfg.train.stage(4)


@pytest.mark.parametrize("profile", PROFILES)
def test_dump_load_round_trip(tmp_path, profile: str) -> None:
    cfg = load_config(f"configs/{profile}.yaml", ["train.stage1.lr=3.3e-4", "train.stage2.lr_drop_epochs=[4, 9]"])
    path = dump_config(cfg, tmp_path / "run" / "config.yaml")
    assert path.is_file() and not path.with_name("config.yaml.tmp").exists()
    assert load_config(path) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert config_from_dict(yaml.safe_load(path.read_text())) == cfg


def test_config_to_dict_is_plain() -> None:
    d = config_to_dict(Config())
    assert d["train"]["stage2"]["lr_drop_epochs"] == [25]
    assert yaml.safe_load(yaml.safe_dump(d)) == d  # only YAML-native types
    assert apply_overrides({}, ["seed=5"])["seed"] == 5
    assert config_from_dict({"epochs": 2}, StageConfig) == StageConfig(epochs=2)


@pytest.mark.parametrize("overrides, key", [
    (["data.input_size=100", "data.heatmap_size=25"], "data.input_size"),  # not a multiple of 64
    (["data.input_size=128"], "data.heatmap_size"),  # heatmap must be input / 4 = 32
    (["data.color_scale_min=2.0"], "data.color_scale_min"),
    (["data.flip_prob=1.5"], "data.flip_prob"),  # a bound beside the field
    (["data.rotation_clip_deg=181"], "data.rotation_clip_deg"),  # a clip beyond half a turn means nothing
    (["train.optimizer=sgd"], "train.optimizer"),  # a choice beside the field
    (["train.stage2.heatmap_weight=-1"], "train.stage2.heatmap_weight"),
    (["train.stage3.epochs=0"], "train.stage3.epochs"),  # would train nothing and write no checkpoint
])
def test_cross_field_invariants_and_bounds_name_the_key(overrides, key) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(key))):
        load_config("configs/smoke.yaml", overrides)
    assert load_config("configs/smoke.yaml", ["data.input_size=128", "data.heatmap_size=32"]).data.heatmap_size == 32


def test_bad_input_size_fails_at_load_with_exit_2_writing_nothing(tmp_path, monkeypatch, capsys) -> None:
    import subprocess
    import sys

    from pose3dlib.data import h36m, mpii
    from pose3dlib.engine import train
    from pose3dlib.tools.cli import main

    argv = ["train", "--config", "configs/cpu.yaml", "--stage", "1", "--run-dir", str(tmp_path / "run"),
            "--set", "data.input_size=100"]
    r = subprocess.run([sys.executable, "-m", "pose3dlib", *argv], check=False, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "'data.input_size'" in r.stderr and "multiple of 64" in r.stderr
    assert not (tmp_path / "run").exists()
    # the same command in this process: refused at load, before training starts or any data is read
    def loaded(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} ran for a config that fails at load")
        return fail

    monkeypatch.setattr(train, "fit", loaded("train.fit"))
    monkeypatch.setattr(h36m, "read_annotations", loaded("h36m.read_annotations"))
    monkeypatch.setattr(mpii, "read_annotations", loaded("mpii.read_annotations"))
    assert main(argv) == 2
    assert "'data.input_size'" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_three_loss_weights_live_in_each_stage() -> None:
    cfg = load_config("configs/smoke.yaml", ["train.stage3.heatmap_weight=0.5"])
    assert cfg.train.stage3.loss_weights() == {"heatmap": 0.5, "depth": 1.0, "geometric": 0.01}
    with pytest.raises(ConfigError, match="'loss'"):
        load_config("configs/smoke.yaml", ["loss.heatmap_weight=2"])


def test_stored_configs_with_moved_keys_are_migrated() -> None:
    from pose3dlib.config import config_from_dict, config_to_dict, migrate_config_dict

    old = config_to_dict(load_config("configs/smoke.yaml"))
    for n in (1, 2, 3):
        del old["train"][f"stage{n}"]["heatmap_weight"]
    del old["train"]["bone_sum_mm"]
    old["loss"] = {"heatmap_weight": 2.0}
    old["eval"]["reconstruct_bone_sum_mm"] = 4000.0
    cfg = config_from_dict(migrate_config_dict(old))
    assert [cfg.train.stage(n).heatmap_weight for n in (1, 2, 3)] == [2.0, 2.0, 2.0]
    assert cfg.train.bone_sum_mm == 4000.0


# ----------------------------------------------------------------------------- audit fixes

def test_a_partial_stage_section_keeps_that_stages_own_defaults(tmp_path) -> None:
    default = Config().train.stage2
    cfg = load_config(write_yaml(tmp_path, {"train": {"stage2": {"epochs": 5}}}))
    assert cfg.train.stage2 == dataclasses.replace(default, epochs=5)
    assert (cfg.train.stage2.ratio_3d, cfg.train.stage2.depth_weight, cfg.train.stage2.lr_drop_epochs) == (1.0, 0.1, (25,))
    stage3 = load_config(write_yaml(tmp_path, {"train": {"stage3": {"epochs": 2}}})).train.stage3
    assert (stage3.lr, stage3.geometric_weight) == (2.5e-5, 0.01)
    # nested all the way down: a section given as a mapping in an override or a stored dict does the same
    assert config_from_dict({"train": {"stage2": {"epochs": 5}}}).train.stage2 == cfg.train.stage2


def test_a_mapping_override_merges_into_the_keys_current_value() -> None:
    yaml_stage2 = load_config("configs/cpu.yaml").train.stage2
    cfg = load_config("configs/cpu.yaml", ["train.stage2={epochs: 1}"])
    assert cfg.train.stage2 == dataclasses.replace(yaml_stage2, epochs=1)  # the YAML's other values stay
    cfg = load_config(None, ["train={stage3: {epochs: 2}, batch_size: 3}"])
    assert cfg.train.stage3 == dataclasses.replace(Config().train.stage3, epochs=2) and cfg.train.batch_size == 3
    assert cfg.train.stage2 == Config().train.stage2
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.stage2\.bogus'"):
        load_config("configs/cpu.yaml", ["train.stage2={bogus: 1}"])
    with pytest.raises(ConfigError, match=r"'train\.stage1': expected a mapping"):
        load_config("configs/cpu.yaml", ["train.stage1=3"])


@pytest.mark.parametrize("override", [
    "eval.pckh_threshold=.nan", "data.rotation_prob=.nan", "train.bone_sum_mm=.nan", "train.stage1.lr=.inf",
    "train.stage2.depth_weight=-.inf", "data.sigma=1e400", pytest.param(f"train.stage1.lr={10 ** 400}", id="int-1e400"),
])
def test_nan_and_infinity_are_refused(override: str) -> None:
    key, value = override.split("=")
    with pytest.raises(ConfigError, match=rf"override '{re.escape(override)}': config key '{re.escape(key)}': "
                                          r"expected a finite number, got "):
        load_config("configs/smoke.yaml", [override])


def _refused_file(path, text: str, message: str) -> None:
    """Write `text` to the config file `path`; loading it must raise ConfigError '<path>: <message>'."""
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {message}"):
        load_config(path)


def test_nan_in_a_file_is_refused_naming_file_and_key(tmp_path) -> None:
    _refused_file(tmp_path / "nan.yaml", "eval:\n  pckh_threshold: .nan\n",
                  r"config key 'eval\.pckh_threshold': expected a finite number, got nan$")


def test_errors_name_the_override_or_the_file_that_caused_them(tmp_path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("configs/smoke.yaml", ["train.batch_size=abc"])
    assert str(err.value) == "override 'train.batch_size=abc': config key 'train.batch_size': expected int, got 'abc'"
    # a cross-field invariant broken by the overrides names them (the file alone is valid)
    with pytest.raises(ConfigError, match=r"^overrides 'seed=1', 'data\.input_size=128': config key 'data\.heatmap_size'"):
        load_config("configs/smoke.yaml", ["seed=1", "data.input_size=128"])
    # an error in the file names the file, even when overrides are given
    path = write_yaml(tmp_path, {"train": {"batch_size": "abc"}})
    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}: config key 'train\.batch_size': expected int"):
        load_config(path, ["train.batch_size=3"])


def test_an_empty_config_file_is_refused(tmp_path) -> None:
    for text in ("", "# only a comment\n"):
        _refused_file(tmp_path / "empty.yaml", text, "empty config file")
    assert load_config(write_yaml(tmp_path, {})) == Config()  # an explicit empty mapping: every default


def test_a_key_given_twice_in_one_mapping_is_refused(tmp_path) -> None:
    _refused_file(tmp_path / "dup.yaml", "train:\n  batch_size: 4\nseed: 1\ntrain:\n  batch_size: 5\n",
                  r"key 'train' given twice in one mapping \(line 1 and line 4\)$")
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  stage1: {epochs: 1, epochs: 2}\n")
    with pytest.raises(ConfigError, match=r"key 'epochs' given twice in one mapping \(line 2 and line 2\)"):
        load_config(path)
    # merge keys may restate what they merge
    path.write_text("train:\n  stage1: &s {epochs: 3, lr: 0.1}\n  stage2:\n    <<: *s\n    epochs: 2\n")
    cfg = load_config(path)
    assert (cfg.train.stage2.epochs, cfg.train.stage2.lr, cfg.train.stage1.epochs) == (2, 0.1, 3)


@pytest.mark.parametrize("drops", ["[-1]", "[2, -3]"])
def test_negative_lr_drop_epochs_are_refused(drops: str) -> None:
    # lr_at_epoch counts 0-based epochs: a drop at e applies from the (e+1)-th epoch on; 0 (a lower
    # rate from the start) is allowed, as configs stored in older checkpoints may hold it
    with pytest.raises(ConfigError, match=r"config key 'train\.stage1\.lr_drop_epochs\[\d\]': expected a value >= 0"):
        load_config("configs/smoke.yaml", [f"train.stage1.lr_drop_epochs={drops}"])
    assert load_config("configs/smoke.yaml", ["train.stage1.lr_drop_epochs=[0, 1]"]).train.stage1.lr_drop_epochs == (0, 1)


def test_a_key_given_twice_in_an_override_mapping_is_refused():
    with pytest.raises(ConfigError, match=r"override 'train\.stage2=\{epochs: 1, epochs: 2\}': key 'epochs' given twice"):
        load_config("configs/smoke.yaml", ["train.stage2={epochs: 1, epochs: 2}"])
