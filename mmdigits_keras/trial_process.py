"""One keras-tuner trial in a child process, so a long search does not grow in memory.

TensorFlow 2.21 keeps about a model's worth of memory after every `fit`, even after
`keras.backend.clear_session()` and garbage collection (measured here: +130 MiB per Model 2
fit, with no Python object left; the pattern of keras-tuner issue #395 and TensorFlow issue
#61791). A process that ends returns everything, so `tuning` runs each trial through
``python -m mmdigits_keras.trial_process REQUEST.json``.

The request (JSON) names the data folder, the split, the hyperparameter values, epochs, the
checkpoint paths and the seed; the child writes ``history`` to the result path.
"""

from __future__ import annotations

import ctypes
import signal
import sys


def die_with_parent():
    """Linux: ask the kernel to kill this process when its parent dies (kill -9 included)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the child then finishes its trial on its own
        pass


def run(request):
    """Trains one trial as `request` describes and returns its Keras history dict."""
    import keras
    import keras_tuner

    from mmdigits_keras.data import load_dataset, train_val_split
    from mmdigits_keras.training import fit_audio_statistics, fit_callbacks
    from mmdigits_keras.tuning import FusionHyperModel

    keras.utils.set_random_seed(request["trial_seed"])
    dataset = load_dataset(request["data"], "train")
    train_part, val_part = train_val_split(dataset, val_fraction=request["val_fraction"], seed=request["seed"])
    audio_mean, audio_variance = fit_audio_statistics(train_part.audio)
    hypermodel = FusionHyperModel(audio_mean=audio_mean, audio_variance=audio_variance, space=request["space"])
    hp = keras_tuner.HyperParameters()
    hp.values.update(request["values"])
    model = hypermodel.build(hp)
    if request.get("initial_weights"):  # Hyperband continues the trial it was promoted from
        model.load_weights(request["initial_weights"])
    objective, direction = request["objective"], request["direction"]
    checkpoint = keras.callbacks.ModelCheckpoint(
        request["checkpoint"], monitor=objective, mode=direction, save_best_only=True, save_weights_only=True)
    history = hypermodel.fit(
        hp, model, train_part.inputs(), train_part.labels,
        validation_data=(val_part.inputs(), val_part.labels),
        epochs=request["epochs"], initial_epoch=request.get("initial_epoch", 0),
        callbacks=[*fit_callbacks(patience=request["patience"]), checkpoint], verbose=request["verbose"],
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def main(argv=None):
    """Entry point: ``python -m mmdigits_keras.trial_process REQUEST.json``; returns 0."""
    from mmdigits_keras.io_utils import read_json, write_json

    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()
    request = read_json(argv[0])
    write_json(request["result"], {"history": run(request)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
