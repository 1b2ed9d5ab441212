"""The training layer: recipes, the one engine, run directories, and the two ways of training
built on them (`train` for classifiers, `train_retrieval` for Xia et al.'s towers)."""

from mmdigits_keras.training.classification import DEFAULT_MODEL, build_classifier, classification_spec, train
from mmdigits_keras.training.engine import TrainingSpec
from mmdigits_keras.training.fitting import compile_model, fit_model
from mmdigits_keras.training.metrics import classification_metrics, predict_labels
from mmdigits_keras.training.preparation import PreparedData, prepare_data
from mmdigits_keras.training.recipes import RECIPES, Recipe, get_recipe
from mmdigits_keras.training.retrieval import build_retrieval_model, train_retrieval
from mmdigits_keras.training.rundir import RUN_FILES, load_ensemble, load_trained_model
from mmdigits_keras.training.settings import TrainingSettings

__all__ = [
    "DEFAULT_MODEL",
    "PreparedData",
    "RECIPES",
    "RUN_FILES",
    "Recipe",
    "TrainingSettings",
    "TrainingSpec",
    "build_classifier",
    "build_retrieval_model",
    "classification_metrics",
    "classification_spec",
    "compile_model",
    "fit_model",
    "get_recipe",
    "load_ensemble",
    "load_trained_model",
    "predict_labels",
    "prepare_data",
    "train",
    "train_retrieval",
]
