"""The classification scores the engine writes into every classifier run's ``metrics.json``
(and evaluation builds on): predicted labels, accuracy and macro-F1 (scikit-learn). The
retrieval runs' scores are `mmdigits_keras.training.retrieval_protocol`'s."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def check_model_inputs(model, dataset):
    """Checks that `dataset`'s arrays fit `model`'s named inputs (``image``, ``audio``).

    Raises:
        ValueError: an input's row shape differs from the data's (e.g. a model trained on
            log-mel features given MFCC rows); the message names the data and both shapes.
    """
    given = dataset.inputs()
    for tensor in getattr(model, "inputs", None) or ():
        name = getattr(tensor, "name", None)
        if name not in given:
            continue
        expected, found = tuple(tensor.shape[1:]), tuple(given[name].shape[1:])
        if len(expected) != len(found) or any(e is not None and e != f for e, f in zip(expected, found)):
            raise ValueError(f"{dataset.source or 'the data'}: the model {model.name!r} takes {name} rows of shape "
                             f"{expected}, the data has {found}; was the model trained on other data or features?")


def predict_labels(model, dataset, *, batch_size=512):
    """Predicted classes of a classifier for every row of a `MultimodalDataset`.

    Returns:
        int64 array (N,) of classes 0..9, in the dataset's row order.

    Raises:
        ValueError: the data does not fit the model's inputs (`check_model_inputs`).
    """
    check_model_inputs(model, dataset)
    probabilities = model.predict(dataset.inputs(), batch_size=batch_size, verbose=0)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def classification_metrics(labels, predicted):
    """Accuracy and macro-F1 (scikit-learn; macro over the classes present) of predicted classes.

    Args:
        labels: int (N,) true classes 0..9.
        predicted: int (N,) predicted classes.

    Returns:
        dict with ``accuracy`` and ``macro_f1`` (floats in [0, 1]) and ``rows`` (N).
    """
    return {"accuracy": float(accuracy_score(labels, predicted)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
            "rows": int(len(labels))}
