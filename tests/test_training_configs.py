"""The accelerate configs shipped in `training/recipes/configs`, checked with accelerate's own classes (its config file
loader, its launcher's argument validation, its DeepSpeedPlugin), transformers' DeepSpeed config filler for the
`gpu_large`/`multi_gpu` recipes, and DeepSpeed's own `DeepSpeedConfig` where deepspeed is installed; the command
`lriad train --num-processes` builds for accelerate's launcher; the recipe presets for GPUs."""

import json
import sys

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, patch_environment
from accelerate.utils.launch import prepare_deepspeed_cmd_env

from lriad_desktop.cli.train import _without_launch_options
from lriad_desktop.core.training_runs.protocol import train_command
from training.recipes.distributed import CONFIG_DIR, LAUNCH_CONFIGS, launch_arguments, resolve_launch_config
from training.recipes.grpo import GRPORecipe, resolve_recipe, vllm_options

EXPECTED = {"ddp": (DistributedType.MULTI_GPU, None), "zero2": (DistributedType.DEEPSPEED, 2),
            "zero3": (DistributedType.DEEPSPEED, 3)}


def _launch(name: str, processes: int = 4):
    """accelerate's launcher arguments for `lriad train --num-processes N --accelerate-config NAME`, validated by
    accelerate as `accelerate launch` validates them."""
    argv = launch_arguments(["--out", "/tmp/x"], processes, resolve_launch_config(name))
    args, defaults, _mp = _validate_launch_command(launch_command_parser().parse_args(argv))
    return args, defaults


def _deepspeed_plugin(args, defaults) -> DeepSpeedPlugin:
    """The plugin each process builds from the environment the launcher gives it (as `TrainingArguments` does)."""
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    _cmd, env = prepare_deepspeed_cmd_env(args)
    with patch_environment(**{k: v for k, v in env.items() if k.startswith("ACCELERATE_")}):
        plugin = DeepSpeedPlugin()
        plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])  # as `TrainingArguments` does
        return plugin


def _filled_deepspeed_config(plugin: DeepSpeedPlugin, recipe: GRPORecipe, processes: int) -> dict:
    """The plugin's config with its "auto" values filled from the recipe's trainer arguments (transformers; it
    needs deepspeed installed)."""
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig
    from trl import GRPOConfig

    args = GRPOConfig(output_dir="/tmp/lriad-config-test", use_cpu=True, bf16=recipe.bf16, report_to="none",
                      per_device_train_batch_size=recipe.batch_size // processes,
                      num_generations=recipe.num_generations, max_completion_length=recipe.max_completion_length,
                      generation_batch_size=recipe.batch_size)  # the whole run's, as with `processes` ranks
    config = HfTrainerDeepSpeedConfig(json.loads(json.dumps(plugin.deepspeed_config, default=str)))
    config.trainer_config_process(args)
    return config.config


@pytest.mark.parametrize("name", sorted(LAUNCH_CONFIGS))
def test_each_shipped_config_loads_and_launches_as_accelerate_reads_it(name):
    path = resolve_launch_config(name)
    assert path.parent == CONFIG_DIR and path.is_file()
    kind, stage = EXPECTED[name]
    config = load_config_from_file(str(path))  # accelerate's own loader (ClusterConfig); unknown keys raise
    assert config.distributed_type == kind and config.num_machines == 1 and not config.use_cpu
    args, defaults = _launch(name, processes=4)
    assert args.num_processes == 4  # --num-processes overrides the file's 8
    assert args.use_deepspeed == (stage is not None) and args.multi_gpu == (stage is None)
    assert args.module and args.training_script == "lriad_desktop"
    assert args.training_script_args[:3] == ["train", "--out", "/tmp/x"]
    if stage is None:
        return
    plugin = _deepspeed_plugin(args, defaults)
    assert plugin.zero_stage == stage
    assert plugin.deepspeed_config["zero_optimization"]["stage"] == stage
    # ZeRO-3 shards the weights: the adapter is only whole when gathered for saving
    assert plugin.deepspeed_config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] == (stage == 3)
    assert defaults.mixed_precision == "bf16" == args.mixed_precision  # as the GPU recipes train


@pytest.mark.parametrize("name", ["zero2", "zero3"])
def test_the_deepspeed_configs_validate_with_deepspeed_itself(name):
    deepspeed_config = pytest.importorskip("deepspeed.runtime.config",
                                           reason="deepspeed not installed (pip install deepspeed)")
    args, defaults = _launch(name, processes=2)
    filled = _filled_deepspeed_config(_deepspeed_plugin(args, defaults), GRPORecipe.multi_gpu(), processes=2)
    assert filled["train_micro_batch_size_per_gpu"] == 8 and filled["bf16"]["enabled"] is True
    filled["train_batch_size"] = filled["train_micro_batch_size_per_gpu"]  # one process in this test
    checked = deepspeed_config.DeepSpeedConfig(filled)  # pydantic models: a wrong field or value raises
    assert checked.zero_optimization_stage == EXPECTED[name][1] and checked.bfloat16_config.enabled
    with pytest.raises(Exception, match="stage"):
        deepspeed_config.DeepSpeedConfig({**filled, "zero_optimization": {"stage": 7}})


def test_a_config_that_is_not_there_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no accelerate config 'zero9': give ddp, zero2, zero3 or a YAML file"):
        resolve_launch_config("zero9")
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"distributed_type": "MULTI_GPU", "num_machines": 1, "num_processes": 2}))
    assert resolve_launch_config(str(own)) == own and resolve_launch_config("") is None


def test_without_a_config_the_launcher_is_torchrun_with_the_train_command():
    args, _defaults, _mp = _validate_launch_command(launch_command_parser().parse_args(
        launch_arguments(["--db", "d.sqlite3", "--out", "o"], 2, None)))
    assert args.multi_gpu and not args.use_deepspeed and args.num_processes == 2  # torchrun, gloo on a CPU
    assert args.training_script_args == ["train", "--db", "d.sqlite3", "--out", "o"]


def test_each_process_gets_the_train_arguments_without_the_launch_options():
    argv = ["train", "--db", "d", "--num-processes", "2", "--out", "o", "--accelerate-config=zero3", "--steps", "3"]
    assert _without_launch_options(argv) == ["--db", "d", "--out", "o", "--steps", "3"]


def test_the_apps_command_asks_for_processes_only_past_one(tmp_path):
    plain = train_command(tmp_path / "s", tmp_path / "b", tmp_path / "o")
    assert "--num-processes" not in plain and "--accelerate-config" not in plain
    assert train_command(tmp_path / "s", tmp_path / "b", tmp_path / "o", processes=1, sharding="zero3") == plain
    two = train_command(tmp_path / "s", tmp_path / "b", tmp_path / "o", processes=2)
    assert two[-2:] == ["--num-processes", "2"]
    sharded = train_command(tmp_path / "s", tmp_path / "b", tmp_path / "o", processes=4, sharding="zero3")
    assert sharded[-4:] == ["--num-processes", "4", "--accelerate-config", "zero3"]


def test_gpu_presets_and_vllm_generation_where_vllm_is_missing(capsys):
    one, many = GRPORecipe.gpu_large(), GRPORecipe.multi_gpu()
    assert (one.use_vllm, many.use_vllm) == (False, True)
    assert many.batch_size == one.batch_size == 16 and many.bf16 and many.gradient_checkpointing
    assert resolve_recipe("multi_gpu", steps=5).max_steps == 5
    assert vllm_options(one) == {}
    if "vllm" in sys.modules or _importable("vllm"):
        assert vllm_options(many)["use_vllm"] is True and vllm_options(many)["vllm_mode"] == "colocate"
    else:
        assert vllm_options(many) == {}
        assert "vllm is not installed here: generating with transformers" in capsys.readouterr().err


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_the_settings_dialogs_gpu_count_reaches_the_command_improve_model_starts(qtbot, tmp_path, tiny_model_dir):
    from lriad_desktop.cli.commands import _build_parser
    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.review_store import ReviewStore
    from lriad_desktop.core.store.adapter_versions import sync_active_version
    from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog
    from lriad_desktop.ui.improve.training_process import plan_improvement

    store = ReviewStore.open(tmp_path / "reviews.sqlite3")
    parent = sync_active_version(store, tiny_model_dir, None)
    settings = Settings(model_dir=str(tiny_model_dir))
    assert "--num-processes" not in plan_improvement(store, settings, parent).command  # default: as before
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.editors["training_processes"].setValue(2)
    dialog.editors["training_sharding"].setCurrentIndex(2)
    chosen = dialog.result_settings()
    assert (chosen.training_processes, chosen.training_sharding) == (2, "zero3")
    command = list(plan_improvement(store, chosen, parent).command)
    args = _build_parser().parse_args(command[command.index("train"):])
    assert (args.num_processes, args.accelerate_config) == (2, "zero3")
    store.close()
