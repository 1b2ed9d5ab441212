import math
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmdigits_keras.training import RECIPES
from mmdigits_keras.training.finetune import finetune_schedule
from mmdigits_keras.training.schedule import fit_callbacks, resolve_patience, scaled_patience


def test_every_recipe_stops_early_and_halves_the_rate_on_a_plateau():
    for recipe in RECIPES.values():
        stopping, plateau = fit_callbacks(recipe, patience=4, monitor="val_crossentropy")
        assert type(stopping).__name__ == "EarlyStopping" and stopping.patience == 4 and stopping.restore_best_weights
        assert type(plateau).__name__ == "ReduceLROnPlateau" and plateau.patience == 2 and plateau.factor == 0.5
        assert stopping.monitor == plateau.monitor == "val_crossentropy"


@given(st.integers(0, 10**7), st.integers(0, 10**7))
def test_the_default_patience_falls_as_the_rows_grow_from_10_to_2(a, b):
    few, many = sorted((a, b))
    assert 2 <= scaled_patience(many) <= scaled_patience(few) <= 10


def test_the_default_patience_is_10_on_the_benchmarks_data_and_2_at_course_scale():
    # Training rows an epoch as prepare_data gives them, with the default recipe's synthetic
    # rows: an FSDD rotation, kaggle_sample, a rotation tiled to 20,000 and to 60,000 rows.
    assert [scaled_patience(rows) for rows in (3531, 4265, 17653, 52960)] == [10, 10, 2, 2]
    assert resolve_patience(None, 52960) == 2 and resolve_patience(7, 52960) == 7


def test_fine_tuning_trains_at_the_best_epochs_rate_for_at_most_its_number_of_epochs():
    # ReduceLROnPlateau logs, at the end of an epoch, the rate the next epoch trains at: the best
    # epoch here (the 4th) trained at the 3rd epoch's logged 5e-4.
    history = SimpleNamespace(history={"val_crossentropy": [0.9, 0.5, 0.6, 0.4, 0.45, 0.5],
                                       "learning_rate": [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]})
    assert finetune_schedule(history, monitor="val_crossentropy", learning_rate=1e-3, epochs=10) == [5e-4] * 4
    assert finetune_schedule(history, monitor="val_crossentropy", learning_rate=1e-3, epochs=2) == [5e-4] * 2
    first = SimpleNamespace(history={"val_loss": [0.2, 0.3], "learning_rate": [1e-3, 1e-3]})
    assert finetune_schedule(first, monitor="val_loss", learning_rate=2e-3, epochs=10) == [2e-3]
    # A non-finite epoch is never the best one; without a logged rate the initial one holds.
    unlogged = SimpleNamespace(history={"val_loss": [math.nan, 0.3, 0.2]})
    assert finetune_schedule(unlogged, monitor="val_loss", learning_rate=1e-3, epochs=10) == [1e-3] * 3


@pytest.mark.parametrize("logged", [{}, {"val_loss": [math.nan, math.inf]}])
def test_fine_tuning_without_a_finite_validation_score_is_refused(logged):
    with pytest.raises(ValueError, match="cannot fine-tune: .*'val_loss'"):
        finetune_schedule(SimpleNamespace(history=logged), monitor="val_loss", learning_rate=1e-3, epochs=10)
