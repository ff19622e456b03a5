"""A short CPU training run measurably learns; training state resumes exactly."""
import pytest
import torch

import tagger
from tagger import preset
from tagger.checkpoint import read_checkpoint
from tagger.evaluate import evaluate
from tagger.training.steps import learning_rate
from tagger.training.trainer import load_splits


def small_config(**train):
    config = preset("quick")
    config.model.widths = (200, 100, 100)
    config.train.lr = 3e-3
    config.train.epochs = 4
    config.train.train_examples = 3000
    config.train.valid_examples = 300
    config.train.precision, config.train.lr_decay_from = "fp32", 1.0  # pinned, not following the preset
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def train(config, run_dir, **options):
    return tagger.train(config, run_dir=run_dir, progress=False, quiet=True, **options)


def history(run_dir) -> list[dict]:
    return read_checkpoint(run_dir)[1]["history"]


@pytest.mark.slow
def test_short_training_learns(data_dir, tmp_path):
    config = small_config()
    _, valid = load_splits(config)
    valid_x, valid_objects = torch.as_tensor(valid.features[:300]), torch.as_tensor(valid.objects[:300].astype("int64"))
    torch.manual_seed(config.train.seed)  # the weights training starts from
    before = evaluate(tagger.Tagger(config.model), valid_x, valid_objects, iterations=3)
    model = train(config, tmp_path)
    after = evaluate(model, valid_x, valid_objects, iterations=3)
    assert history(tmp_path)[-1]["epoch"] == 4
    # the denoising cost falls well below the untrained model's (ln 2 = 0.693 per pixel)
    assert after["denoising_cost"][-1] < before["denoising_cost"][-1] - 0.2
    # and grouping emerges: AMI clearly above the untrained model's (~0)
    assert before["ami"][-1] < 0.05
    assert after["ami"][-1] > before["ami"][-1] + 0.15
    # iterating helps: the last iteration groups better than the first
    assert after["ami"][-1] > after["ami"][0]


def test_resume_continues_bit_for_bit(data_dir, tmp_path):
    """Stop after 2 epochs, resume to 3: identical to an uninterrupted 3-epoch run (CPU)."""
    config = small_config(epochs=3, train_examples=400, valid_examples=50)
    config.model.widths = (24, 12, 12)
    train(config, tmp_path / "straight")
    config.train.epochs = 2
    train(config, tmp_path / "split")
    config.train.epochs = 3
    train(config, tmp_path / "split", resume=True)
    _, state_a, weights_a, _ = read_checkpoint(tmp_path / "straight")
    _, state_b, weights_b, _ = read_checkpoint(tmp_path / "split")
    assert state_a["step"] == state_b["step"]
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name


def test_the_narrow_recipe_is_one_recipe_for_colour_scenes_and_textures():
    tetrominoes, texture = preset("quick", "tetrominoes").validate(), preset("quick-narrow", "texture-mnist").validate()
    for field in ("norm", "widths", "v_param", "v_init", "iterations", "noise"):
        assert getattr(tetrominoes.model, field) == getattr(texture.model, field), field
    assert (texture.model.widths, texture.model.v_init, texture.model.iterations) == ((64, 32, 16), 0.2, 5)
    assert (tetrominoes.train.lr, tetrominoes.train.batch_size, tetrominoes.train.lr_decay_from) == \
        (texture.train.lr, texture.train.batch_size, texture.train.lr_decay_from) == (2e-3, 32, 0.5)
    assert (texture.model.channels, texture.model.input_size, texture.train.dataset) == (1, 784, "texture-mnist")


def test_learning_rate_schedule_by_hand():
    assert [learning_rate(1.0, 1.0, step, 100) for step in (0, 50, 99)] == [1.0, 1.0, 1.0]  # constant
    assert [learning_rate(1.0, 0.0, step, 100) for step in (0, 50, 99)] == pytest.approx([1.0, 0.5, 0.01])
    assert [learning_rate(2.0, 0.5, step, 100) for step in (40, 50, 75, 99)] == pytest.approx([2.0, 2.0, 1.0, 0.04])


def test_decaying_rate_reaches_the_last_step_near_zero(data_dir, tmp_path, monkeypatch):
    """20 steps, decay from step 10: the last step (index 19) runs at lr / 10."""
    from tagger.training.steps import Step

    rates = []
    real = Step.set_lr
    monkeypatch.setattr(Step, "set_lr", lambda self, value: (rates.append(value), real(self, value)))
    config = small_config(epochs=2, train_examples=400, valid_examples=50, batch_size=40, lr_decay_from=0.5)
    config.model.widths = (24, 12, 12)
    train(config, tmp_path)
    assert read_checkpoint(tmp_path)[1]["step"] == len(rates) == 20
    assert rates[9] == config.train.lr and rates[-1] == pytest.approx(config.train.lr / 10)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    from tagger.errors import TrainingError
    from tagger.training.steps import LossOf

    config = small_config(epochs=1, train_examples=200, valid_examples=20)
    config.model.widths = (24, 12, 12)
    train(config, tmp_path)
    good_step = read_checkpoint(tmp_path)[1]["step"]
    real = LossOf.forward
    monkeypatch.setattr(LossOf, "forward", lambda self, *a: real(self, *a) * float("nan"))
    config.train.epochs = 2
    with pytest.raises(TrainingError, match="nan"):
        train(config, tmp_path, resume=True)
    _, state, weights, _ = read_checkpoint(tmp_path)
    assert state["step"] == good_step
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_max_minutes_stops_with_a_checkpoint_and_resume_finishes(data_dir, tmp_path):
    """A time limit shorter than one step stops after that step, checkpointed mid-epoch; a resume
    without the limit finishes the epoch, with the training cost of an uninterrupted run."""
    config = small_config(epochs=1, train_examples=200, valid_examples=20, batch_size=20, max_minutes=1e-6)
    config.model.widths = (24, 12, 12)
    train(config, tmp_path)
    _, state, _, _ = read_checkpoint(tmp_path)
    assert (state["step"], state["position"], state["epoch"], state["history"]) == (1, 1, 0, [])
    config.train.max_minutes = 0.0
    train(config, tmp_path, resume=True)
    assert history(tmp_path)[-1]["epoch"] == 1 and history(tmp_path)[-1]["step"] == 10
    train(config, tmp_path / "straight")
    assert history(tmp_path)[-1]["train_cost"] == history(tmp_path / "straight")[-1]["train_cost"]


def test_checkpoint_minutes_skips_epoch_saves_but_keeps_the_last(data_dir, tmp_path, monkeypatch):
    """--checkpoint-minutes: epoch ends inside the interval write no checkpoint; the last epoch
    always does, and the weights are those of an every-epoch run."""
    import tagger.training.trainer as trainer_module

    saves = []
    real = trainer_module.save_checkpoint
    monkeypatch.setattr(trainer_module, "save_checkpoint", lambda *a, **k: (saves.append(a[3]["step"]), real(*a, **k)))
    config = small_config(epochs=3, train_examples=200, valid_examples=20, batch_size=20)
    config.model.widths = (24, 12, 12)
    train(config, tmp_path / "every")
    assert saves == [10, 20, 30]
    saves.clear()
    config.train.checkpoint_minutes = 60.0
    train(config, tmp_path / "sparse")
    assert saves == [30]
    _, state, weights, _ = read_checkpoint(tmp_path / "sparse")
    _, _, every, _ = read_checkpoint(tmp_path / "every")
    assert state["step"] == 30 and all(torch.equal(weights[k], every[k]) for k in every)
