"""Checkpoints: round trip, atomic layout, and refusal of anything that is not ours."""
import json
import pickle

import pytest
import torch

import tagger
from tagger import Config, ModelConfig, Tagger
from tagger.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint

SMALL = ModelConfig(input_size=16, widths=(12, 8, 6))


def saved_run(tmp_path, model_config=SMALL):
    torch.manual_seed(0)
    model = Tagger(model_config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    config = Config(preset="custom", model=model_config)
    save_checkpoint(tmp_path, config, model, {"step": 3}, {"rng.torch": torch.get_rng_state()})
    return model


def test_round_trip_gives_the_same_function(tmp_path):
    model = saved_run(tmp_path)
    loaded = tagger.load(tmp_path)
    assert not loaded.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name])
    x = (torch.rand(4, 16) < 0.3).float()
    a = model.infer(x, generator=torch.Generator().manual_seed(0)).masks
    b = loaded.infer(x, generator=torch.Generator().manual_seed(0)).masks
    assert torch.equal(a, b)
    # the checkpoint directory and the weights file itself are accepted too
    assert isinstance(load_model(tmp_path / "checkpoint" / "model.safetensors"), Tagger)


def test_second_save_replaces_the_first_and_keeps_no_temp(tmp_path):
    saved_run(tmp_path)
    saved_run(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint"]
    _, state, _, training = read_checkpoint(tmp_path)
    assert state == {"step": 3} and "rng.torch" in training


def test_refuses_a_pickle(tmp_path):
    saved_run(tmp_path)
    target = tmp_path / "checkpoint" / "model.safetensors"
    target.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="pickle"):
        tagger.load(tmp_path)


def test_refuses_truncated_weights(tmp_path):
    saved_run(tmp_path)
    target = tmp_path / "checkpoint" / "model.safetensors"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="safetensors"):
        tagger.load(tmp_path)


def test_refuses_shape_mismatch(tmp_path):
    saved_run(tmp_path)
    state = tmp_path / "checkpoint" / "state.json"
    document = json.loads(state.read_text())
    document["config"]["model"]["widths"] = [12, 8, 7]
    state.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="shape"):
        tagger.load(tmp_path)


def test_refuses_foreign_json_and_missing_dirs(tmp_path):
    saved_run(tmp_path)
    (tmp_path / "checkpoint" / "state.json").write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match="not a tagger checkpoint"):
        tagger.load(tmp_path)
    with pytest.raises(CheckpointError, match="no such"):
        tagger.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no tagger checkpoint"):
        tagger.load(tmp_path / "empty")


def test_refuses_nan_weights(tmp_path):
    model = Tagger(SMALL)
    with torch.no_grad():
        model.z_bias[0] = float("nan")
    save_checkpoint(tmp_path, Config(model=SMALL), model, {})
    with pytest.raises(CheckpointError, match="NaN"):
        tagger.load(tmp_path)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    from tagger import checkpoint

    model = saved_run(tmp_path)
    before = (tmp_path / "checkpoint" / "model.safetensors").read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", no_space)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, Config(model=SMALL), model, {"step": 9})
    assert (tmp_path / "checkpoint" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # no half-written staging left
    _, state, _, _ = read_checkpoint(tmp_path)
    assert state == {"step": 3}


def test_crash_between_renames_falls_back_to_previous(tmp_path):
    saved_run(tmp_path)
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")  # as if killed mid-swap
    assert isinstance(tagger.load(tmp_path), Tagger)
    saved_run(tmp_path)  # the next save repairs the layout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def _overwrite_inside(path):
    """Bytes changed inside the tensor data: still a readable file of finite values."""
    data = bytearray(path.read_bytes())
    data[-16:] = bytes(reversed(data[-16:]))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["overwritten", "truncated", "swapped"])
def test_digests_refuse_a_damaged_weight_file_by_name(tmp_path, damage):
    saved_run(tmp_path)
    folder = tmp_path / "checkpoint"
    model, training = folder / "model.safetensors", folder / "training.safetensors"
    if damage == "overwritten":
        _overwrite_inside(model)
    elif damage == "truncated":
        model.write_bytes(model.read_bytes()[:-4])
    else:
        saved_run(tmp_path / "other", ModelConfig(input_size=400, widths=(12, 8, 6), groups=3))
        model.write_bytes((tmp_path / "other" / "checkpoint" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="model.safetensors"):
        tagger.load(tmp_path)


def test_a_damaged_checkpoint_falls_back_to_an_intact_checkpoint_old(tmp_path, capsys):
    saved_run(tmp_path)
    import shutil

    shutil.copytree(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    _overwrite_inside(tmp_path / "checkpoint" / "model.safetensors")
    _, state, _, _ = read_checkpoint(tmp_path)
    assert state == {"step": 3}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and "sha256" in err[0] and "checkpoint.old" in err[0], err
    _overwrite_inside(tmp_path / "checkpoint.old" / "model.safetensors")  # both damaged: the current one's error
    with pytest.raises(CheckpointError, match=r"checkpoint/model.safetensors: sha256"):
        read_checkpoint(tmp_path)


def test_safetensors_own_full_disk_error_is_errno_28(tmp_path, monkeypatch):
    import errno

    from safetensors import SafetensorError

    from tagger import checkpoint

    model = saved_run(tmp_path)

    def no_space(*args, **kwargs):
        raise SafetensorError('IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')

    monkeypatch.setattr(checkpoint, "save_file", no_space)
    with pytest.raises(OSError) as raised:
        save_checkpoint(tmp_path, Config(model=SMALL), model, {"step": 9})
    assert raised.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_an_edited_state_json_is_refused_by_its_own_digest(tmp_path):
    """A change that still parses (the step, a hyperparameter) is caught; a state.json written
    before this digest existed is still read."""
    saved_run(tmp_path)
    path = tmp_path / "checkpoint" / "state.json"
    original = path.read_text()
    document = json.loads(original)
    document["state"]["step"] = 4
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="state.json: content differs"):
        read_checkpoint(tmp_path)
    del document["document_sha256"]
    path.write_text(json.dumps(document))
    assert read_checkpoint(tmp_path)[1]["step"] == 4


WRITER = """
import sys, torch
from pathlib import Path
from tagger import Config, ModelConfig, Tagger
from tagger.checkpoint import save_checkpoint
run, stop = Path(sys.argv[1]), Path(sys.argv[2])
config = Config(preset="custom", model=ModelConfig(input_size=16, widths=(12, 8, 6)))
model = Tagger(config.model)
first = "input_weight"
step = 0
while not stop.exists():
    step += 1
    with torch.no_grad():
        model.state_dict()[first].fill_(step)  # the weights say which step they belong to
    save_checkpoint(run, config, model, {"step": step}, {"step": torch.tensor([step])})
print(step)
"""


def test_readers_never_see_half_a_checkpoint_while_it_is_replaced(tmp_path):
    """A writer process saving in a tight loop, a reader loading 300+ times: every read is one
    whole checkpoint (state.json, weights and training tensors of the same save), none fails."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    run, stop = tmp_path / "run", tmp_path / "stop"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run), str(stop)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run / "checkpoint" / "state.json").exists():
            assert writer.poll() is None and time.time() < deadline
            time.sleep(0.05)
        reads, steps, failures, started = 0, set(), [], time.time()
        while (reads < 300 or len(steps) < 30) and time.time() - started < 15:
            try:
                config, state, weights, training = read_checkpoint(run)
                assert weights["input_weight"].flatten()[0].item() == state["step"] == training["step"].item()
                steps.add(state["step"])
            except CheckpointError as error:
                failures.append(str(error))
            reads += 1
        stop.touch()
        saved = int(writer.communicate(timeout=30)[0])
    finally:
        writer.kill()
    assert failures == [], f"{len(failures)} of {reads} reads failed, first: {failures[0]}"
    assert reads >= 300 and len(steps) >= 30 and saved >= len(steps), (reads, len(steps), saved)
