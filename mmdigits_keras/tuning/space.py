"""Search spaces over any registry model, as a keras-tuner `HyperModel` trained by the engine.

Hyperparameters that shape the model carry the builder's argument names, so
``create_model(model, **model_hyperparameters(best_hp.values))`` rebuilds the winner;
``learning_rate`` and ``batch_size`` are training settings (`training_hyperparameters`).

- Nippani Ravi's family (``model1``..``model4``, ``*_lstm``): ``depth`` (Model 1..4), ``width``,
  ``audio`` (``conv1d`` / ``lstm``) with ``lstm_units`` inside a ``conditional_scope`` on
  ``audio == "lstm"``, ``dropout``;
- every other family: ``width`` and ``dropout``;
- all: ``learning_rate`` (log-uniform) and ``batch_size``;
- with a recipe that augments (``default``, ``baseline``), the recipe's knobs that matter for
  new voices, under their `Recipe` field names: modality dropout (``audio_dropout``,
  ``image_dropout``), augmentation strengths (``noise``, ``time_mask``) and
  ``label_smoothing`` (`recipe_hyperparameters`). Every choice list holds the recipe's own
  value, the untuned first trial's.
"""

from __future__ import annotations

import dataclasses

import keras_tuner

from mmdigits_keras.models import model_info
from mmdigits_keras.training import classification_spec, compile_model, fit_model, get_recipe
from mmdigits_keras.utils.defaults import DEFAULT_MODEL, DEFAULT_RECIPE, PATIENCE, SEED

LATE_FUSION_SPACE = {
    "depth": [1, 2, 3, 4],
    "width": [0.5, 1.0, 2.0],
    "audio": ["conv1d", "lstm"],
    "lstm_units": [32, 64, 128],
    "dropout": [0.0, 0.125, 0.25, 0.375, 0.5],
    "learning_rate": [1e-4, 3e-3],  # log-uniform range
    "batch_size": [32, 64, 128, 256],
}
FAMILY_SPACE = {key: LATE_FUSION_SPACE[key] for key in ("width", "dropout", "learning_rate", "batch_size")}
# Recipe fields searched when the recipe augments (each list also gets the recipe's own value).
RECIPE_SPACE = {
    "audio_dropout": [0.3, 0.5, 0.7],
    "image_dropout": [0.0, 0.15, 0.3],
    "noise": [0.0, 0.2, 0.4],
    "time_mask": [0, 6, 12],
    "label_smoothing": [0.0, 0.1, 0.2],
}
MODEL_HYPERPARAMETERS = ("depth", "audio", "width", "dropout", "lstm_units")
DEFAULT_LEARNING_RATE = 1e-3  # `train`'s
TRAINING_HYPERPARAMETERS = ("learning_rate", "batch_size")
RECIPE_HYPERPARAMETERS = tuple(RECIPE_SPACE)


def default_space(model, recipe="default"):
    """The search space of registry model `model` (the late-fusion family or the others) trained
    with `recipe`; the model's own dropout and the recipe's own knob values are always among
    the choices."""
    space = dict(LATE_FUSION_SPACE if model_info(model).family == "late_fusion" else FAMILY_SPACE)
    space["dropout"] = sorted({*space["dropout"], model_info(model).defaults["dropout"]})
    plan = get_recipe(recipe)
    if plan.augment:
        for key, values in RECIPE_SPACE.items():
            space[key] = sorted({*values, getattr(plan, key)})
    return space


def recipe_hyperparameters(values):
    """The recipe fields among hyperparameter values (for ``dataclasses.replace(recipe, ...)``)."""
    return {k: values[k] for k in RECIPE_HYPERPARAMETERS if values.get(k) is not None}


def trial_recipe(recipe, values):
    """`recipe` (a name or `Recipe`) with a trial's batch size and recipe fields."""
    plan = get_recipe(recipe)
    batch = {"batch_size": int(values["batch_size"])} if values.get("batch_size") is not None else {}
    return dataclasses.replace(plan, **batch, **recipe_hyperparameters(values))


def model_hyperparameters(values):
    """The builder arguments among hyperparameter values (inactive ones dropped)."""
    return {k: values[k] for k in MODEL_HYPERPARAMETERS if values.get(k) is not None}


def training_hyperparameters(values):
    """The training settings (``learning_rate``, ``batch_size``) among hyperparameter values."""
    return {k: values[k] for k in TRAINING_HYPERPARAMETERS if values.get(k) is not None}


def check_space(space, *, model="model2", recipe="default"):
    """Returns the complete search space of `model` with `recipe`: its `default_space` updated with `space`.

    Raises:
        ValueError: keys the model's space does not have, empty choice lists, or values the
            builder would refuse.
    """
    base = default_space(model, recipe)
    space = {**base, **(space or {})}
    unknown = set(space) - set(base)
    if unknown:
        raise ValueError(f"unknown search-space keys {sorted(unknown)} for {model!r}; known: {sorted(base)}")
    for key, values in space.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"search space `{key}` must be a non-empty list. Received: {values!r}")
    if not set(space.get("depth", [1])) <= {1, 2, 3, 4}:
        raise ValueError(f"search space `depth` must hold values in 1..4. Received: {space['depth']!r}")
    if not set(space.get("audio", ["conv1d"])) <= {"conv1d", "lstm"}:
        raise ValueError(f"search space `audio` must hold 'conv1d'/'lstm'. Received: {space['audio']!r}")
    low, high = space["learning_rate"][0], space["learning_rate"][-1]
    if not 0 < low <= high:
        raise ValueError(f"search space `learning_rate` must be a range 0 < low <= high. "
                         f"Received: {space['learning_rate']!r}")
    return {k: list(v) for k, v in space.items()}


class RegistryHyperModel(keras_tuner.HyperModel):
    """A registry model's search space; every trial is built and trained by the engine with the
    same recipe as `train` (`classification_spec`, `compile_model`, `fit_model`).

    Args:
        model: Registry name (`list_models()`); the space follows its family (module docstring).
        prepared: The `PreparedData` the trials train on (split and speech statistics).
        recipe: Recipe name (``"default"`` or ``"plain"``); the trial's ``batch_size``
            replaces the recipe's.
        space: Optional overrides of the model's space (lists of choices), e.g.
            ``{"depth": [1, 2], "width": [0.5]}`` for a small search.
        seed: Seed of each trial's data shuffling and augmentation.
        patience: EarlyStopping patience (epochs), as in `train`.
        name: The HyperModel name.

    Raises:
        ValueError: an unknown model or recipe, or a bad `space` (see `check_space`).

    Reference:
        Nippani Ravi, Tables 1-4; Tseng, Table 3 and section 2.4 (its grid search).
    """

    def __init__(self, model=DEFAULT_MODEL, *, prepared, recipe=DEFAULT_RECIPE, space=None, seed=SEED,
                 patience=PATIENCE, name="registry", tunable=True):
        super().__init__(name=name, tunable=tunable)
        self.model = model
        self.space = check_space(space, model=model, recipe=recipe)
        self.recipe = get_recipe(recipe)
        self.prepared = prepared
        self.seed = seed
        self.patience = patience

    def defaults(self):
        """The untuned configuration: the registered model's arguments, `train`'s learning rate
        and the recipe's batch size (a search's first trial, see `DefaultsFirst`)."""
        return {**model_info(self.model).defaults, "learning_rate": DEFAULT_LEARNING_RATE,
                "batch_size": self.recipe.batch_size,
                **{key: getattr(self.recipe, key) for key in RECIPE_HYPERPARAMETERS}}

    def declare(self, hp):
        """Declares the hyperparameters in `hp`, each defaulting to `defaults` where the space
        holds it; returns (builder arguments, learning rate)."""
        s, defaults = self.space, self.defaults()

        def choice(name):
            default = defaults.get(name)
            return hp.Choice(name, s[name], default=default if default in s[name] else None)

        kwargs = {}
        if "depth" in s:
            kwargs["depth"] = choice("depth")
        kwargs["width"] = choice("width")
        if "audio" in s:
            kwargs["audio"] = choice("audio")
            if "lstm" in s["audio"]:
                with hp.conditional_scope("audio", ["lstm"]):
                    units = choice("lstm_units")
                if kwargs["audio"] == "lstm":
                    kwargs["lstm_units"] = units
        kwargs["dropout"] = choice("dropout")
        low, high = s["learning_rate"][0], s["learning_rate"][-1]
        default = DEFAULT_LEARNING_RATE if low <= DEFAULT_LEARNING_RATE <= high else None
        learning_rate = (hp.Float("learning_rate", low, high, sampling="log", default=default) if high > low
                         else hp.Fixed("learning_rate", low))
        choice("batch_size")
        for key in RECIPE_HYPERPARAMETERS:
            if key in s:
                choice(key)
        return kwargs, learning_rate

    def trial_recipe(self, hp):
        """The recipe with the trial's batch size and recipe fields."""
        return trial_recipe(self.recipe, hp.values)

    def build(self, hp):
        """Declares the hyperparameters and returns the compiled classifier (engine recipe)."""
        kwargs, learning_rate = self.declare(hp)
        model, _ = classification_spec(self.model, self.recipe, kwargs).build(self.prepared)
        return compile_model(model, self.trial_recipe(hp), learning_rate=learning_rate)

    def fit(self, hp, model, *args, epochs=1, callbacks=(), initial_epoch=0, verbose="auto", seed=None, **kwargs):
        """Trains `model` with `fit_model` on the prepared data; returns the Keras `History`."""
        return fit_model(model, self.prepared, self.trial_recipe(hp), epochs=epochs,
                         seed=self.seed if seed is None else seed, patience=self.patience, callbacks=list(callbacks),
                         initial_epoch=initial_epoch, verbose=verbose)
