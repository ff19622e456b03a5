"""Exports: fp16 pieces under a size limit that reproduce the fp32 model and load wherever a run does."""
import subprocess
import sys

import pytest
import torch

from tagger import preset
from tagger.checkpoint import load_model, read_checkpoint, save_checkpoint
from tagger.errors import CheckpointError, ConfigError
from tagger.evaluate import evaluate
from tagger.export import export_run, read_export
from tagger.model import Tagger
from tagger.training.labeled import initialise_from


def saved_run(tmp_path, dataset="shapes"):
    """A checkpoint of a small model whose weights are not all at their initial values."""
    config = preset("quick", dataset)
    config.model.widths = (64, 32, 16)
    torch.manual_seed(0)
    model = Tagger(config.model)
    with torch.no_grad():
        for value in model.parameters():
            value.add_(0.05 * torch.randn_like(value))
    run = tmp_path / "run"
    save_checkpoint(run, config, model, {"step": 7, "epoch": 1})
    return run, config, model


def test_pieces_stay_under_the_limit_and_rejoin_to_the_fp16_weights(tmp_path):
    run, _, model = saved_run(tmp_path)
    limit = 0.2  # MiB: forces several pieces and cuts the input layer into chunks
    paths = export_run(run, tmp_path / "export", piece_mib=limit)
    assert len(paths) > 2
    assert all(path.stat().st_size <= limit * 2**20 for path in paths)
    config, state, weights, training = read_export(tmp_path / "export")
    assert state["step"] == "7" and training == {}
    assert config.model == read_checkpoint(run)[0].model
    for name, value in model.state_dict().items():
        assert weights[name].dtype == torch.float32 and weights[name].shape == value.shape, name
        assert torch.equal(weights[name], value.half().float()), name


def test_fp32_export_is_exact(tmp_path):
    run, _, model = saved_run(tmp_path)
    export_run(run, tmp_path / "export", dtype="fp32", piece_mib=0.3)
    weights = read_export(tmp_path / "export")[2]
    assert all(torch.equal(weights[name], value) for name, value in model.state_dict().items())


@pytest.mark.parametrize("dataset", ["shapes", "texture-mnist"])
def test_fp16_export_reproduces_the_models_costs(tmp_path, dataset):
    """Same inputs, noise and mask draws: the fp16 export's denoising cost per iteration within
    1e-3 (relative) of the fp32 model's, and nearly the same masks."""
    run, _, _ = saved_run(tmp_path, dataset)
    export_run(run, tmp_path / "export")
    original, exported = load_model(run), load_model(tmp_path / "export")
    size = original.config.input_size
    x = torch.rand(200, size, generator=torch.Generator().manual_seed(1))
    if dataset == "shapes":
        x = (x < 0.3).float()
    objects = torch.randint(0, 4, (200, size), generator=torch.Generator().manual_seed(2))
    a = evaluate(original, x, objects, iterations=3, seed=3)
    b = evaluate(exported, x, objects, iterations=3, seed=3)
    for cost_a, cost_b in zip(a["denoising_cost"], b["denoising_cost"]):
        assert abs(cost_a - cost_b) <= 1e-3 * max(1.0, abs(cost_a))
    generator = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    masks_a = original.infer(x, iterations=3, generator=generator()).masks
    masks_b = exported.infer(x, iterations=3, generator=generator()).masks
    assert (masks_a.argmax(2) == masks_b.argmax(2)).float().mean() > 0.99


def test_init_from_an_export_loads_what_init_from_the_run_loads(tmp_path):
    run, config, _ = saved_run(tmp_path)
    export_run(run, tmp_path / "export")
    from_run, from_export = Tagger(config.model), Tagger(config.model)
    loaded_run, _ = initialise_from(from_run, run)
    loaded_export, _ = initialise_from(from_export, tmp_path / "export")
    assert loaded_run == loaded_export
    for name, value in from_run.state_dict().items():
        assert torch.equal(from_export.state_dict()[name], value.half().float()), name


def test_damaged_missing_and_mixed_pieces_are_one_line_errors(tmp_path):
    run, _, _ = saved_run(tmp_path)
    paths = export_run(run, tmp_path / "export", piece_mib=0.2)
    with pytest.raises(ConfigError, match="not empty"):
        export_run(run, tmp_path / "export")
    data = bytearray(paths[1].read_bytes())
    data[-100] ^= 0xFF  # inside the tensor bytes: the file still parses
    paths[1].write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=paths[1].name + ": sha256 differs"):
        read_export(tmp_path / "export")
    paths[1].unlink()
    with pytest.raises(CheckpointError, match="incomplete, " + paths[1].name + " missing"):
        read_export(tmp_path / "export")
    (tmp_path / "export" / "model-00001-of-00009.safetensors").write_bytes(paths[0].read_bytes())
    with pytest.raises(CheckpointError, match="mixed"):
        read_export(tmp_path / "export")


def test_export_and_eval_from_the_command_line(tmp_path, data_dir):
    run, _, _ = saved_run(tmp_path)
    env_run = lambda *args: subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True,  # noqa: E731
                                           text=True, env={"TAGGER_DATA": str(data_dir), "PATH": "/usr/bin:/bin"})
    done = env_run("export", str(run), "--output", str(tmp_path / "export"), "--piece-mib", "0.5")
    assert done.returncode == 0, done.stderr
    assert "fp16 piece(s)" in done.stdout
    done = env_run("eval", str(tmp_path / "export"), "--examples", "50", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "AMI" in done.stdout
    done = env_run("train", "--resume", str(tmp_path / "export"))
    assert done.returncode == 2 and "no training state" in done.stderr


def test_a_paper_size_texture_model_comes_back_in_four_pieces(tmp_path):
    """The TextureMNIST paper model (30 M parameters, 58 MiB in fp16) in 4 pieces of <= 15 MiB:
    what a GPU lease that returns at most 8 files of 16 MiB can bring back beside its logs."""
    config = preset("paper", "texture-mnist")
    save_checkpoint(tmp_path / "run", config, Tagger(config.model), {"step": 0})
    paths = export_run(tmp_path / "run", tmp_path / "export", piece_mib=15)
    assert len(paths) == 4 and all(path.stat().st_size <= 15 * 2**20 for path in paths)


def test_pieces_of_two_exports_are_refused_by_name_and_old_exports_still_load(tmp_path):
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    run, config, model = saved_run(tmp_path)
    first = export_run(run, tmp_path / "a", piece_mib=0.2)
    with torch.no_grad():
        for value in model.parameters():
            value.mul_(0.5)
    save_checkpoint(run, config, model, {"step": 8, "epoch": 1})
    second = export_run(run, tmp_path / "b", piece_mib=0.2)
    assert len(first) == len(second) > 2
    assert read_export(tmp_path / "a")[1]["export_id"] != read_export(tmp_path / "b")[1]["export_id"]
    shutil.copyfile(second[1], first[1])  # piece 2 of the step-8 export among step 7's
    with pytest.raises(CheckpointError) as caught:
        read_export(tmp_path / "a")
    assert f"piece {first[1].name} belongs to another export (step 8, not 7)" in str(caught.value)
    assert "\n" not in str(caught.value)

    def strip_ids(path):  # an export written before pieces carried the export's id
        with safe_open(str(path), framework="pt") as handle:
            metadata = {k: v for k, v in handle.metadata().items() if k != "export_id"}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        save_file(tensors, str(path), metadata=metadata)

    for path in second:
        strip_ids(path)
    assert "export_id" not in read_export(tmp_path / "b")[1]
    assert isinstance(load_model(tmp_path / "b"), Tagger)
    third = export_run(run, tmp_path / "c", piece_mib=0.2)  # step 8 again, with ids
    shutil.copyfile(second[0], third[0])  # an id-less piece among pieces with ids
    with pytest.raises(CheckpointError, match=f"piece {third[0].name} belongs to another export "
                                              r"\(an export without an id, not export [0-9a-f]{12}\)"):
        read_export(tmp_path / "c")


@pytest.mark.parametrize("piece_mib", [float("nan"), float("inf"), 0, -1, 0.01])
def test_piece_size_must_be_a_positive_number(piece_mib, tmp_path):
    run, _, _ = saved_run(tmp_path)
    with pytest.raises(ConfigError, match="--piece-mib"):
        export_run(run, tmp_path / "export", piece_mib=piece_mib)
