"""TrainingSettings: one value for how a run trains, shared by train, train_retrieval and best/."""

import dataclasses

import pytest

from mmdigits_keras.training import TrainingSettings, train
from mmdigits_keras.training.settings import FIELDS, resolve_settings
from mmdigits_keras.utils import defaults


def test_defaults_are_the_packages_defaults():
    settings = TrainingSettings()
    assert (settings.epochs, settings.learning_rate, settings.val_fraction, settings.patience, settings.seed) == (
        defaults.EPOCHS, defaults.LEARNING_RATE, defaults.VAL_FRACTION, defaults.PATIENCE, defaults.SEED)
    assert settings.split is None and settings.verbose == "auto"
    assert settings.protocol is None and settings.finetune_epochs == defaults.FINETUNE_EPOCHS


@pytest.mark.parametrize("field, value", [("epochs", 0), ("epochs", 2.5), ("learning_rate", -1e-3),
                                          ("val_fraction", 1.0), ("val_fraction", 0), ("patience", 0),
                                          ("split", "speakers"), ("seed", "0"), ("seed", True),
                                          ("strategy", "tpu"), ("verbose", 3), ("protocol", "ensemble"),
                                          ("finetune_epochs", 0)])
def test_a_value_out_of_range_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        TrainingSettings(**{field: value})


def test_options_replace_the_settings_fields_and_unknown_ones_are_named():
    base = TrainingSettings(epochs=5, seed=3)
    resolved = resolve_settings(base, {"seed": 4})
    assert (resolved.epochs, resolved.seed) == (5, 4) and base.seed == 3  # frozen: a new value
    assert resolve_settings(None, {}, epochs=50).epochs == 50  # the caller's own default
    assert resolve_settings(base, {}, epochs=50) is base  # given settings win over the caller's default
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['epoch'\].*'epochs'"):
        resolve_settings(None, {"epoch": 3})
    with pytest.raises(ValueError, match="must be a TrainingSettings"):
        resolve_settings({"epochs": 3})
    assert set(FIELDS) == {f.name for f in dataclasses.fields(TrainingSettings)}


def test_train_refuses_an_unknown_option_before_reading_any_data(tmp_path):
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['epoch'\]"):
        train(tmp_path / "no-such-folder", out=tmp_path / "run", epoch=3)
    assert not (tmp_path / "run").exists()
