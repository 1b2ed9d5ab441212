"""How a run trains, as one value: `TrainingSettings`, what the engine runs with. Each function
takes it one way: `train` and `train_retrieval` its fields as keywords (``epochs=20``, as Keras's
``fit`` does), `run_search` one object for its ``best/`` (``settings=``, beside the trials' own
``epochs``)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from mmdigits_keras.data.splits import SPLITS
from mmdigits_keras.training.distribute import check_strategy
from mmdigits_keras.utils.checks import check_choice, check_positive
from mmdigits_keras.utils.defaults import (
    AUGMENT_ON,
    EPOCHS,
    FINETUNE_EPOCHS,
    LEARNING_RATE,
    PATIENCE,
    PROTOCOL,
    PROTOCOLS,
    SEED,
    VAL_FRACTION,
)

VERBOSITIES = ("auto", 0, 1, 2)


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How a run trains (the recipe says what it trains on: `Recipe`).

    Attributes:
        epochs: Maximum epochs (int > 0); early stopping may end sooner.
        learning_rate: The optimizer's initial learning rate (float > 0).
        val_fraction: Validation fraction in (0, 1); with grouped splits one of
            ``round(1 / val_fraction)`` folds (a fifth for 0.2).
        split: What validation holds out: ``"speaker"`` (whole speakers; needs the data set's
            speaker ids), ``"recording"`` (whole recordings) or ``"row"`` (random rows; leaks
            repeated recordings). None: the strictest the data supports
            (`mmdigits_keras.data.splits`).
        seed: Seed of the split, the weight initialization, shuffling and augmentation (int).
        patience: EarlyStopping patience in epochs (int > 0); ReduceLROnPlateau halves the
            learning rate after ``patience // 2``. None: scaled to the training rows, about
            42,000 samples in whole epochs: 10 on small data (up to 4,400 rows an epoch), down
            to 2 from 16,800 (`mmdigits_keras.training.schedule.scaled_patience`);
            ``config.json`` records the patience used.
        strategy: None (one device, or on TensorFlow the `tf.distribute` strategy whose scope
            is open), ``"default"``, ``"mirrored"`` (every visible GPU; TensorFlow and JAX) or
            the backend's own strategy object (`tf.distribute.Strategy`,
            `keras.distribution.Distribution`; `mmdigits_keras.training.distribute.make_strategy`).
            Not recorded as an object: ``config.json`` names it.
        augment_on: Where a recipe's augmentation runs (`mmdigits_keras.training.placement`):
            ``"host"`` (an input pipeline on the CPU's cores: `tf.data` on TensorFlow),
            ``"device"`` (inside the training step, where the model runs) or None: the
            default, ``"device"`` (`mmdigits_keras.utils.defaults.DEFAULT_AUGMENT_ON`).
            ``config.json`` records the placement used.
        protocol: Which model the run saves (`mmdigits_keras.training.finetune`):
            ``"finetune"`` (the default for one run): the validated model, trained on further
            on every row (the validation rows too) for `finetune_epochs` epochs at its best
            epoch's learning rate, its validation scores staying the validated run's
            (``metrics.json``'s ``validation`` says so); ``"single"``: the validated model
            itself. None: ``"finetune"``, and ``"single"`` for cross-validation folds (the
            folds together already cover every row), which refuse ``"finetune"``.
        finetune_epochs: Epochs of fine-tuning on every row (int > 0), capped at the validated
            run's best epoch.
        verbose: Keras `fit` verbosity: ``"auto"`` (a progress bar on a terminal or in a
            notebook, one line per epoch elsewhere), 0, 1 or 2.
        semi_supervised: Whether the run also learns from the data folder's unlabeled test rows
            (`mmdigits_keras.training.pseudo_labels`): False (the default: some competitions
            forbid learning from test inputs); True: the validated model pseudo-labels them;
            a run directory (str or path): that teacher run of the same data folder labels
            them (e.g. a fused model for a speech-alone student). The confident rows join the
            fine-tuning on every row; the test labels are never read. Needs the
            ``"finetune"`` protocol; classification only. ``config.json`` and ``metrics.json``
            record it (``semi_supervised``).

    Raises:
        ValueError: a value out of its range (the message names the field).
    """

    epochs: int = EPOCHS
    learning_rate: float = LEARNING_RATE
    val_fraction: float = VAL_FRACTION
    split: str | None = None
    seed: int = SEED
    patience: int | None = PATIENCE
    strategy: object = None
    augment_on: str | None = None
    protocol: str | None = None
    finetune_epochs: int = FINETUNE_EPOCHS
    verbose: object = "auto"
    semi_supervised: object = False

    def __post_init__(self):
        check_positive("epochs", self.epochs)
        check_positive("learning_rate", self.learning_rate, float)
        if self.patience is not None:
            check_positive("patience", self.patience)
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1):
            raise ValueError(f"`val_fraction` must be in (0, 1). Received: val_fraction={self.val_fraction!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)} or None. Received: split={self.split!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"`seed` must be an integer. Received: seed={self.seed!r}")
        check_strategy(self.strategy)
        check_choice("augment_on", self.augment_on, (None, *AUGMENT_ON))
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {list(PROTOCOLS)} or None. "
                             f"Received: protocol={self.protocol!r}")
        check_positive("finetune_epochs", self.finetune_epochs)
        if self.verbose not in VERBOSITIES:
            raise ValueError(f"`verbose` must be one of {list(VERBOSITIES)}. Received: verbose={self.verbose!r}")
        if not isinstance(self.semi_supervised, (bool, str, os.PathLike)) or self.semi_supervised == "":
            raise ValueError("`semi_supervised` must be True, False or a teacher run directory. "
                             f"Received: semi_supervised={self.semi_supervised!r}")
        if self.semi_supervised is not False and self.protocol == "single":
            raise ValueError("`semi_supervised` trains on the pseudo-labelled test rows in the fine-tuning on every "
                             "row; it needs protocol='finetune' (the default). Received: protocol='single'")


def resolve_protocol(protocol, *, folds, semi_supervised=False):
    """The protocol a run trains with: `protocol`, or with None ``PROTOCOL`` (``"finetune"``) for
    one run and ``"single"`` for a cross-validation run or fold (`folds` true).

    Raises:
        ValueError: ``"finetune"`` asked of a cross-validation run, or `semi_supervised` of a
            cross-validation run (its pseudo-labelled rows join the fine-tuning).
    """
    if not folds:
        return protocol or PROTOCOL
    if semi_supervised is not False:
        raise ValueError("`semi_supervised` and `folds` exclude each other: the pseudo-labelled rows join the "
                         "fine-tuning of one run on every row")
    if protocol not in (None, "single"):
        raise ValueError(f"`protocol={protocol!r}` and `folds` exclude each other: the fold models of a "
                         "cross-validation together already learn from every row (use protocol='single' or None)")
    return "single"


FIELDS = tuple(field.name for field in dataclasses.fields(TrainingSettings))


def as_options(settings):
    """The fields of `settings` as a dict of keywords (``train(**as_options(settings))``);
    shallow, so a strategy object stays itself."""
    return {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}


def resolve_settings(settings=None, options=None, **defaults):
    """`settings` (or `TrainingSettings(**defaults)`) with the keyword `options` replacing its fields.

    Args:
        settings: None or a `TrainingSettings`.
        options: dict of field -> value given as keyword arguments (e.g. ``train(epochs=1)``).
        **defaults: Fields of the calling function's own defaults (e.g. retrieval's epochs),
            used when `settings` is None.

    Returns:
        A `TrainingSettings`.

    Raises:
        ValueError: `settings` is not a `TrainingSettings`, an option is not one of its
            fields, or a value is out of range.
    """
    if settings is not None and not isinstance(settings, TrainingSettings):
        raise ValueError(f"`settings` must be a TrainingSettings. Received: settings={settings!r}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; the training settings are {list(FIELDS)}")
    base = settings if settings is not None else TrainingSettings(**defaults)
    return dataclasses.replace(base, **options) if options else base
