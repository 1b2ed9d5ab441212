"""The names the package's defaults and choices are made of, in one module without TensorFlow,
so the command line's ``--help`` and choices come from the same place as the library's
defaults without starting TensorFlow. The library checks itself against them
(`mmdigits_keras.training.recipes` builds its `RECIPES` for exactly `RECIPE_NAMES`)."""

# `train`'s, `tune`'s and the demo's model: the robustness benchmark's winner (docs/performance.md).
DEFAULT_MODEL = "hybrid_cnn"
# `retrieval train`'s towers: seed 001's image and speech CNN encoders.
DEFAULT_TOWERS = "hybrid_cnn"
# `train --strategy`: tf.distribute strategies by name (training/distribute.py).
STRATEGIES = ("default", "mirrored")
# The registered recipes (training/recipes.py); the first is the default.
RECIPE_NAMES = ("default", "baseline", "plain")
DEFAULT_RECIPE = RECIPE_NAMES[0]
# keras-tuner objectives a search may optimize, with their direction.
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
DEFAULT_OBJECTIVE = "val_accuracy"
