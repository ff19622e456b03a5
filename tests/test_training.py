"""A short CPU training run measurably learns; training state resumes exactly."""
import pytest
import torch

from tagger import preset
from tagger.checkpoint import read_checkpoint
from tagger.evaluate import evaluate
from tagger.training import Trainer, apply_process_settings
from tagger.training.steps import learning_rate


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


@pytest.mark.slow
def test_short_training_learns(data_dir, tmp_path):
    apply_process_settings(small_config().train, torch.device("cpu"))
    trainer = Trainer(small_config(), tmp_path, device="cpu", progress=False)
    before = evaluate(trainer.model, trainer.valid_x, trainer.valid_objects, iterations=3)
    last = trainer.run()
    after = evaluate(trainer.model, trainer.valid_x, trainer.valid_objects, iterations=3)
    assert last["epoch"] == 4
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
    apply_process_settings(config.train, torch.device("cpu"))
    straight = Trainer(config, tmp_path / "straight", device="cpu", progress=False)
    straight.run()
    config.train.epochs = 2
    apply_process_settings(config.train, torch.device("cpu"))
    first = Trainer(config, tmp_path / "split", device="cpu", progress=False)
    first.run()
    config.train.epochs = 3
    apply_process_settings(config.train, torch.device("cpu"))
    second = Trainer(config, tmp_path / "split", device="cpu", progress=False)
    second.run(resume=True)
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


def test_decaying_rate_reaches_the_last_step_near_zero(data_dir, tmp_path):
    """20 steps, decay from step 10: the last step (index 19) runs at lr / 10."""
    config = small_config(epochs=2, train_examples=400, valid_examples=50, batch_size=40, lr_decay_from=0.5)
    config.model.widths = (24, 12, 12)
    apply_process_settings(config.train, torch.device("cpu"))
    trainer = Trainer(config, tmp_path, device="cpu", progress=False)
    trainer.run()
    assert trainer.state.step == 20
    assert trainer.step.optimizer.param_groups[0]["lr"] == pytest.approx(config.train.lr / 10)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path):
    from tagger.errors import TrainingError

    config = small_config(epochs=1, train_examples=200, valid_examples=20)
    config.model.widths = (24, 12, 12)
    apply_process_settings(config.train, torch.device("cpu"))
    trainer = Trainer(config, tmp_path, device="cpu", progress=False)
    trainer.run()
    good_step = read_checkpoint(tmp_path)[1]["step"]
    with torch.no_grad():
        trainer.model.z_bias.fill_(float("nan"))
    trainer.config.train.epochs = 2
    with pytest.raises(TrainingError, match="nan"):
        trainer.run()
    _, state, weights, _ = read_checkpoint(tmp_path)
    assert state["step"] == good_step
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_max_minutes_stops_with_a_checkpoint_and_resume_finishes(data_dir, tmp_path):
    """A time limit shorter than one step stops after that step, checkpointed mid-epoch; a resume
    without the limit finishes the epoch."""
    config = small_config(epochs=1, train_examples=200, valid_examples=20, batch_size=20, max_minutes=1e-6)
    config.model.widths = (24, 12, 12)
    apply_process_settings(config.train, torch.device("cpu"))
    assert Trainer(config, tmp_path, device="cpu", progress=False).run() == {}
    _, state, _, _ = read_checkpoint(tmp_path)
    assert (state["step"], state["position"], state["epoch"]) == (1, 1, 0)
    config.train.max_minutes = 0.0
    last = Trainer(config, tmp_path, device="cpu", progress=False).run(resume=True)
    assert last["epoch"] == 1 and last["step"] == 10


def test_checkpoint_minutes_skips_epoch_saves_but_keeps_the_last(data_dir, tmp_path, monkeypatch):
    """--checkpoint-minutes: epoch ends inside the interval write no checkpoint; the last epoch
    always does, and the weights are those of an every-epoch run."""
    import tagger.training.trainer as trainer_module

    saves = []
    real = trainer_module.save_checkpoint
    monkeypatch.setattr(trainer_module, "save_checkpoint", lambda *a, **k: (saves.append(a[3]["step"]), real(*a, **k)))
    config = small_config(epochs=3, train_examples=200, valid_examples=20, batch_size=20)
    config.model.widths = (24, 12, 12)
    apply_process_settings(config.train, torch.device("cpu"))
    Trainer(config, tmp_path / "every", device="cpu", progress=False).run()
    assert saves == [10, 20, 30]
    saves.clear()
    config.train.checkpoint_minutes = 60.0
    apply_process_settings(config.train, torch.device("cpu"))
    Trainer(config, tmp_path / "sparse", device="cpu", progress=False).run()
    assert saves == [30]
    _, state, weights, _ = read_checkpoint(tmp_path / "sparse")
    _, _, every, _ = read_checkpoint(tmp_path / "every")
    assert state["step"] == 30 and all(torch.equal(weights[k], every[k]) for k in every)
