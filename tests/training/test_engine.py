from mmdigits_keras.training import RECIPES
from mmdigits_keras.training.engine import fit_callbacks


def test_every_recipe_stops_early_and_halves_the_rate_on_a_plateau():
    for recipe in RECIPES.values():
        stopping, plateau = fit_callbacks(recipe, patience=4, monitor="val_crossentropy")
        assert type(stopping).__name__ == "EarlyStopping" and stopping.patience == 4 and stopping.restore_best_weights
        assert type(plateau).__name__ == "ReduceLROnPlateau" and plateau.patience == 2 and plateau.factor == 0.5
        assert stopping.monitor == plateau.monitor == "val_crossentropy"
