"""Stored configs: options that were measured, not adopted and removed still read where they were off."""
import pytest

from tagger import Config, ConfigError, preset


def stored(model=None, train=None) -> dict:
    data = preset("quick", "tetrominoes").to_dict()
    data["model"].update(model or {})
    data["train"].update(train or {})
    return data


def test_a_config_round_trips():
    config = preset("quick", "tetrominoes")
    assert Config.from_dict(config.to_dict()) == config


def test_removed_options_that_were_off_are_dropped():
    old = stored(dict(pixel_noise=0.0, row_dropout=0.0, row_band=1, row_length=105, mask_skip=False),
                 dict(same_colour=0.0))
    assert Config.from_dict(old) == preset("quick", "tetrominoes")


@pytest.mark.parametrize("model, train, flag", [
    (dict(mask_skip=True), None, "--mask-skip"),
    (dict(pixel_noise=0.1), None, "--pixel-noise"),
    (dict(row_dropout=0.2), None, "--row-dropout"),
    (dict(row_band=4), None, "--row-band"),
    (None, dict(same_colour=0.5), "--same-colour"),
    (dict(v_param="log"), None, "--v-param log"),
])
def test_removed_options_that_were_on_are_refused_in_one_line(model, train, flag):
    with pytest.raises(ConfigError, match=f"{flag}.*removed after commit") as caught:
        Config.from_dict(stored(model, train))
    assert "\n" not in str(caught.value)
