"""The tuning layer: keras-tuner searches over any registry model, every trial trained by the
engine with the same recipe as `train` (`RegistryHyperModel`, `SearchTuner`, `run_search`)."""

from mmdigits_keras.tuning.best import export_best, export_ensemble
from mmdigits_keras.tuning.cluster import parse_oracle_address, wait_for_oracle
from mmdigits_keras.tuning.oracles import TUNERS, default_tuner, make_oracle
from mmdigits_keras.tuning.results import leaderboard, plot_scores
from mmdigits_keras.tuning.search import load_search, run_search
from mmdigits_keras.tuning.space import (
    RegistryHyperModel,
    check_space,
    default_space,
    model_hyperparameters,
    recipe_hyperparameters,
    training_hyperparameters,
    trial_recipe,
)
from mmdigits_keras.tuning.state import PROJECT_NAME, SEARCH_FILE
from mmdigits_keras.tuning.tuner import SearchTuner

__all__ = ["PROJECT_NAME", "RegistryHyperModel", "SEARCH_FILE", "SearchTuner", "TUNERS",
           "check_space", "default_space", "default_tuner", "export_best", "export_ensemble", "leaderboard",
           "load_search", "make_oracle", "model_hyperparameters", "parse_oracle_address", "plot_scores",
           "recipe_hyperparameters", "run_search", "training_hyperparameters", "trial_recipe", "wait_for_oracle"]
