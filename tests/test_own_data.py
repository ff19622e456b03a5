"""Your own data in, masks out: `tagger train --data`, the exported-file round trip, `tagger segment`,
eval / show on a file, configs from files, and one-line refusals (run in-process through `main`)."""
import json
import tracemalloc

import numpy as np
import pytest
import torch

import tagger
from tagger import datasets, preset
from tagger.checkpoint import read_checkpoint
from tagger.cli import main

TINY = ["--widths", "8-8", "--epochs", "1", "--train-examples", "40", "--batch-size", "20",
        "--valid-examples", "20", "--no-progress", "--device", "cpu"]


def small(config):
    config.model.widths = (24, 12, 12)
    config.train.epochs, config.train.batch_size = 1, 20
    config.train.train_examples, config.train.valid_examples = 200, 50
    config.train.precision, config.train.lr_decay_from = "fp32", 1.0
    return config


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data_dir):
    """Shapes' train and valid splits written by `tagger data export`."""
    folder = tmp_path_factory.mktemp("exported")
    for split in ("train", "valid"):
        assert main(["data", "export", "shapes", "--split", split, "--output", str(folder / f"{split}.npz")]) == 0
    return folder


@pytest.mark.slow
def test_training_from_an_exported_file_equals_training_on_the_builtin_dataset(exported, tmp_path):
    builtin = small(preset("quick"))
    own = small(preset("quick"))
    own.train.dataset, own.train.data, own.train.valid_data = "user", str(exported / "train.npz"), str(exported / "valid.npz")
    a = tagger.train(builtin, run_dir=tmp_path / "builtin", progress=False, quiet=True)
    b = tagger.train(own, run_dir=tmp_path / "own", progress=False, quiet=True)
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name]), name
    rows = [read_checkpoint(tmp_path / name)[1]["history"][-1] for name in ("builtin", "own")]
    for row in rows:
        row.pop("elapsed_s")
    assert rows[0] == rows[1]  # the same validation scores


@pytest.fixture(scope="module")
def colour_file(tmp_path_factory):
    """600 colour images of 8x8 with two coloured squares each, and their object ids."""
    rng = np.random.default_rng(0)
    images = np.zeros((600, 8, 8, 3), np.uint8)
    objects = np.zeros((600, 8, 8), np.uint8)
    for i in range(600):
        for k in (1, 2):
            r, c = rng.integers(0, 5, size=2)
            images[i, r:r + 3, c:c + 3] = rng.integers(60, 255, size=3)
            objects[i, r:r + 3, c:c + 3] = k
    path = tmp_path_factory.mktemp("colour") / "squares.npz"
    np.savez(path, images=images, objects=objects)
    return path


@pytest.fixture(scope="module")
def own_run(colour_file, tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("own") / "run"
    assert main(["train", "--data", str(colour_file), "--run-dir", str(run), *TINY]) == 0
    return run


def test_a_run_on_a_file_sizes_its_model_by_the_data_and_records_the_file(own_run, colour_file):
    config = json.loads((own_run / "config.json").read_text())
    assert config["train"]["dataset"] == "user" and config["train"]["data"] == str(colour_file.resolve())
    assert config["train"]["data_sha256"] == datasets.file_digest(colour_file)
    assert (config["model"]["input_size"], config["model"]["channels"]) == (8 * 8 * 3, 3)
    assert config["model"]["image_shape"] == [8, 8, 3] and config["model"]["likelihood"] == "continuous"
    assert config["preset"] == "quick" and config["train"]["epochs"] == 1  # --epochs beside it wins


def test_segment_writes_masks_that_sum_to_one_and_their_argmax(own_run, colour_file, tmp_path):
    output = tmp_path / "masks.npz"
    assert main(["segment", str(own_run), "--data", str(colour_file), "--output", str(output), "--groups", "3",
                 "--batch-size", "64", "--no-progress", "--device", "cpu"]) == 0
    with np.load(output) as result:
        masks, groups = result["masks"], result["groups"]
    assert masks.shape == (600, 3, 8, 8) and masks.dtype == np.float16
    assert groups.shape == (600, 8, 8) and groups.dtype == np.uint8
    assert np.allclose(masks.astype(np.float32).sum(axis=1), 1, atol=5e-3)
    chosen = np.take_along_axis(masks, groups[:, None].astype(np.int64), axis=1)[:, 0]  # (N, H, W)
    assert np.array_equal(chosen, masks.max(axis=1))  # each pixel's group has its largest mask (ties in fp16)
    model = tagger.load(own_run)  # the Python call gives the same masks for the first batch
    x = torch.as_tensor(datasets.from_path(colour_file).features[:64])
    direct = model.segment(x, groups=3, generator=torch.Generator().manual_seed(0))
    assert direct.shape == (64, 3, 8, 8)
    assert np.allclose(direct.numpy(), masks[:64].astype(np.float32), atol=2e-3)


def test_segment_keeps_one_batch_in_memory(own_run, tmp_path, data_dir):
    """Python-side allocations of segmenting 4,000 images stay below the size of their masks."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4000, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "many.npy", images)
    datasets.from_path(tmp_path / "many.npy")  # read and cache first: the reading is not segment's
    masks_bytes = 4000 * 32 * 8 * 8 * 2  # (N, K = 32, H, W) float16
    tracemalloc.start()
    assert main(["segment", str(own_run), "--data", str(tmp_path / "many.npy"), "--output", str(tmp_path / "m.npz"),
                 "--groups", "32", "--batch-size", "100", "--no-progress", "--device", "cpu"]) == 0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.75 * masks_bytes, (peak, masks_bytes)


def test_eval_scores_a_file_with_objects_and_refuses_one_without(own_run, colour_file, tmp_path, capsys):
    output = tmp_path / "eval.json"
    assert main(["eval", str(own_run), "--data", str(colour_file), "--examples", "200", "--output", str(output),
                 "--no-progress", "--device", "cpu"]) == 0
    result = json.loads(output.read_text())
    assert {"ami", "ari", "mbo", "miou"} <= set(result) and result["examples"] == 200
    bare = tmp_path / "bare.npy"
    np.save(bare, np.load(colour_file)["images"][:50])
    capsys.readouterr()
    assert main(["eval", str(own_run), "--data", str(bare), "--no-progress", "--device", "cpu"]) == 2
    assert "no objects" in capsys.readouterr().err
    assert main(["show", str(own_run), "--data", str(bare), "--output", str(tmp_path / "g.png"),
                 "--no-progress", "--device", "cpu"]) == 0


def test_a_changed_file_is_refused_by_its_digest(own_run, colour_file, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(own_run, copy)
    config = json.loads((copy / "config.json").read_text())
    changed = tmp_path / "squares.npz"
    with np.load(colour_file) as data:
        np.savez(changed, images=data["images"][::-1], objects=data["objects"][::-1])
    config["train"]["data"] = str(changed)
    (copy / "config.json").write_text(json.dumps(config))
    from tagger.checkpoint import load_run
    from tagger.config import Config
    from tagger.datasets import DataError, user_splits

    with pytest.raises(DataError, match="changed since the run started"):
        user_splits(Config.from_dict(config).train)
    assert load_run(copy)[0].train.data_sha256 == datasets.file_digest(colour_file)


def test_config_files_reproduce_and_override(own_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["train", "--config", str(own_run / "config.json"), "--epochs", "3", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((own_run / "config.json").read_text())
    stored["train"]["epochs"] = 3
    assert printed == stored
    toml = tmp_path / "exp.toml"
    toml.write_text('preset = "quick"\n[model]\nwidths = [40, 20]\n[train]\ndataset = "tetrominoes"\nepochs = 2\n')
    assert main(["train", "--config", str(toml), "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = preset("quick", "tetrominoes").to_dict()
    expected["model"]["widths"], expected["train"]["epochs"] = [40, 20], 2
    assert printed == json.loads(json.dumps(expected))  # tuples as JSON lists


@pytest.mark.parametrize("args, needle", [
    (["train", "--data", "{tmp}/missing.npz"], "no such file"),
    (["train", "--data", "{tmp}/nan.npz"], "NaN"),
    (["train", "--data", "{file}", "--resize", "0x5"], "resize must be positive"),
    (["train", "shapes", "--valid", "{file}"], "apply to --data runs only"),
    (["train", "shapes", "--data", "{file}"], "--data replaces the DATASET"),
    (["train", "--data", "{file}", "--widths", "3000000-10", "--run-dir", "{tmp}/huge"], "GiB"),
    (["train", "--config", "{tmp}/nan.npz"], "--config"),
    (["data", "export", "shapes"], "--output FILE.npz"),
    (["segment", "{run}", "--data", "{tmp}/grey.npy", "--output", "{tmp}/m.npz"], "do not fit this model"),
])
def test_bad_own_data_is_one_line(args, needle, own_run, colour_file, tmp_path, capsys):
    np.savez(tmp_path / "nan.npz", images=np.full((4, 8, 8), np.nan, np.float32))
    np.save(tmp_path / "grey.npy", np.zeros((4, 5, 5), np.uint8))
    values = dict(tmp=tmp_path, file=colour_file, run=own_run)
    capsys.readouterr()
    assert main([a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tagger: error:") and needle in err[0], err
    assert not (tmp_path / "huge").exists()


def test_images_without_objects_train_and_score_nothing(tmp_path, capsys, data_dir):
    np.save(tmp_path / "bare.npy", np.random.default_rng(0).integers(0, 256, size=(300, 8, 8, 3), dtype=np.uint8))
    assert main(["train", "--data", str(tmp_path / "bare.npy"), "--run-dir", str(tmp_path / "run"), *TINY]) == 0
    out = capsys.readouterr().out
    assert "without objects (nothing scored)" in out and "no objects to score" in out
    row = read_checkpoint(tmp_path / "run")[1]["history"][-1]
    assert np.isnan(row["valid_ami_5"]) and np.isnan(row["valid_ari_5"]) and np.isfinite(row["valid_cost_5"])
