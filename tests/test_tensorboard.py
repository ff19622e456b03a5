"""TensorBoard shows a run live: the grouping figure every epoch and per-iteration charts."""
import pytest

from tagger import preset
import tagger


@pytest.mark.parametrize("interval, epochs", [(0.0, [1, 2]), (3600.0, [1])])
def test_training_logs_the_grouping_figure_at_most_every_interval(data_dir, tmp_path, monkeypatch, interval, epochs):
    """Every epoch when epochs are slower than the interval; once in a short run with a long one."""
    import tagger.training.trainer as trainer_module

    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    monkeypatch.setattr(trainer_module, "FIGURE_SECONDS", interval)
    config = preset("quick")
    config.model.widths = (24, 12, 12)
    config.train.epochs, config.train.train_examples, config.train.valid_examples = 2, 100, 50
    config.train.batch_size, config.train.eval_batch_size, config.train.eval_iterations = 50, 50, 2
    tagger.train(config, run_dir=tmp_path, progress=False, quiet=True)
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert "groupings/valid" in events.Tags()["images"]
    images = events.Images("groupings/valid")
    assert [image.step for image in images] == epochs
    assert images[0].width > 100 and images[0].height > 100
    assert {"valid_ami_1", "valid_ami_2", "valid_ari_2"} <= set(events.Tags()["scalars"])
