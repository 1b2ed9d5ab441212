import math
from types import SimpleNamespace

import pytest

from mmdigits_keras.training import RECIPES
from mmdigits_keras.training.fitting import fit_callbacks
from mmdigits_keras.training.refit import refit_schedule


def test_every_recipe_stops_early_and_halves_the_rate_on_a_plateau():
    for recipe in RECIPES.values():
        stopping, plateau = fit_callbacks(recipe, patience=4, monitor="val_crossentropy")
        assert type(stopping).__name__ == "EarlyStopping" and stopping.patience == 4 and stopping.restore_best_weights
        assert type(plateau).__name__ == "ReduceLROnPlateau" and plateau.patience == 2 and plateau.factor == 0.5
        assert stopping.monitor == plateau.monitor == "val_crossentropy"


def test_refit_replays_the_epochs_up_to_the_best_one_at_their_learning_rates():
    # ReduceLROnPlateau logs, at the end of an epoch, the rate the next epoch trains at.
    history = SimpleNamespace(history={"val_crossentropy": [0.9, 0.5, 0.6, 0.4, 0.45, 0.5],
                                       "learning_rate": [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]})
    assert refit_schedule(history, monitor="val_crossentropy", learning_rate=1e-3) == [1e-3, 1e-3, 1e-3, 5e-4]
    first = SimpleNamespace(history={"val_loss": [0.2, 0.3], "learning_rate": [1e-3, 1e-3]})
    assert refit_schedule(first, monitor="val_loss", learning_rate=2e-3) == [2e-3]
    # A non-finite epoch is never the best one; without a logged rate the initial one holds.
    unlogged = SimpleNamespace(history={"val_loss": [math.nan, 0.3, 0.2]})
    assert refit_schedule(unlogged, monitor="val_loss", learning_rate=1e-3) == [1e-3] * 3


@pytest.mark.parametrize("logged", [{}, {"val_loss": [math.nan, math.inf]}])
def test_refit_without_a_finite_validation_score_is_refused(logged):
    with pytest.raises(ValueError, match="cannot refit: .*'val_loss'"):
        refit_schedule(SimpleNamespace(history=logged), monitor="val_loss", learning_rate=1e-3)
