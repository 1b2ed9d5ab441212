"""One keras-tuner trial: in this process, or in a child so a long search does not grow in memory.

TensorFlow 2.21 keeps about a model's worth of memory after every `fit`, even after
`keras.backend.clear_session()` and garbage collection (measured here: +130 MiB per Model 2
fit, with no Python object left; the pattern of keras-tuner issue #395 and TensorFlow issue
#61791). A process that ends returns everything, so the tuner runs each trial through
``python -m mmdigits_keras.tuning.trial REQUEST.json``.

The request (JSON) names the data folder, split, model, recipe, space, hyperparameter values,
epochs, the checkpoint paths and the seed; the child writes ``history`` to the result path.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import sys

import keras
import keras_tuner

from mmdigits_keras.training import get_recipe, prepare_data
from mmdigits_keras.training.engine import seed_everything
from mmdigits_keras.training.logs import tensorboard_callback, write_hparams
from mmdigits_keras.tuning.space import RegistryHyperModel
from mmdigits_keras.utils.files import read_json, write_json


def die_with_parent():
    """Linux: ask the kernel to kill this process when its parent dies (kill -9 included)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the child then finishes its trial on its own
        pass


def hypermodel_for(request):
    """The `RegistryHyperModel` a request describes, with its data prepared (split, statistics)."""
    prepared = prepare_data(request["data"], val_fraction=request["val_fraction"], seed=request["seed"],
                            synthetic_share=get_recipe(request["recipe"]).synthetic_share)
    return RegistryHyperModel(request["model"], prepared=prepared, recipe=request["recipe"], space=request["space"],
                              seed=request["seed"], patience=request["patience"])


def train_trial(request, hypermodel):
    """Builds and trains one trial with `hypermodel` as `request` describes.

    The best epoch's weights (by the objective) go to ``request["checkpoint"]``; a Hyperband
    trial promoted from an earlier one starts from that one's checkpoint
    (``request["initial_weights"]``).

    Returns:
        The Keras `History`.
    """
    seed_everything(request["trial_seed"])
    hp = keras_tuner.HyperParameters()
    hp.values.update(request["values"])
    model = hypermodel.build(hp)
    if request.get("initial_weights"):
        model.load_weights(request["initial_weights"])
    checkpoint = keras.callbacks.ModelCheckpoint(request["checkpoint"], monitor=request["objective"],
                                                 mode=request["direction"], save_best_only=True,
                                                 save_weights_only=True)
    callbacks = [checkpoint]
    if request.get("log_dir"):
        shutil.rmtree(request["log_dir"], ignore_errors=True)  # a trial run again after a kill starts clean
        write_hparams(request["log_dir"], request["values"], trial_id=request["trial_id"])
        callbacks.append(tensorboard_callback(request["log_dir"]))
    return hypermodel.fit(hp, model, epochs=request["epochs"], initial_epoch=request.get("initial_epoch", 0),
                          callbacks=callbacks, verbose=request["verbose"], seed=request["trial_seed"])


def main(argv=None):
    """Entry point: ``python -m mmdigits_keras.tuning.trial REQUEST.json``; returns 0."""
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()
    request = read_json(argv[0])
    history = train_trial(request, hypermodel_for(request))
    write_json(request["result"], {"history": {k: [float(v) for v in vs] for k, vs in history.history.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
