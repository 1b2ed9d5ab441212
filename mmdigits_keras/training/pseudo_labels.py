"""Semi-supervised training on a data folder's unlabeled test rows
(`TrainingSettings.semi_supervised`): confident pseudo-labels, then training on them.

After the validated run, a labelling model predicts the folder's test rows, whose label file is
never opened: the validated model itself (self-training), or a teacher run of the same data
folder (e.g. a fused model teaching a speech-alone student, which still predicts from speech
alone). A test row keeps its predicted class when the labeller is at least as confident as the
lowest confidence at which its predictions on the run's validation rows are
`PSEUDO_LABEL_PRECISION` (0.99) precise (scikit-learn's `precision_recall_curve`). The kept
rows join the fine-tuning on every labelled row (the default protocol,
`mmdigits_keras.training.finetune`): same epochs and learning rate, more rows.

References:
    Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep Neural
    Networks", ICML 2013 workshop; Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning
    with Consistency and Confidence", NeurIPS 2020 (a confidence threshold);
    `sklearn.semi_supervised.SelfTrainingClassifier` (the protocol).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from mmdigits_keras.data.dataset import MultimodalDataset, concatenate
from mmdigits_keras.data.layouts import load_dataset
from mmdigits_keras.training.metrics import check_model_inputs
from mmdigits_keras.training.rundir import load_trained_model, read_run_config
from mmdigits_keras.utils.defaults import PSEUDO_LABEL_PRECISION

logger = logging.getLogger("mmdigits_keras")


@dataclasses.dataclass(frozen=True, eq=False)
class PseudoLabels:
    """The test rows a run trains on, with the classes its labeller gave them.

    Attributes:
        rows: The kept test rows (`MultimodalDataset`), labelled with the predicted classes.
        test_rows: Test rows the labeller saw (kept or not).
        threshold: The confidence (max softmax probability, in [0, 1]; inf: none kept) a row
            needed.
        validation_precision: The labeller's precision on the validation rows at `threshold`.
        teacher: The teacher run's path, or None (the validated model labelled them).
    """

    rows: MultimodalDataset
    test_rows: int
    threshold: float
    validation_precision: float
    teacher: str | None = None

    def record(self):
        """What ``config.json`` and ``metrics.json`` say (``semi_supervised``): the test rows'
        inputs were used, never their labels."""
        return {"test_inputs_used": True, "test_labels_read": False, "labeller": self.teacher or "validated model",
                "test_rows": self.test_rows, "pseudo_labelled_rows": len(self.rows),
                "threshold": None if np.isinf(self.threshold) else round(self.threshold, 6),
                "validation_precision": round(self.validation_precision, 6), "precision_target": PSEUDO_LABEL_PRECISION}


def confidence_threshold(labels, probabilities, *, precision=PSEUDO_LABEL_PRECISION):
    """The lowest confidence at which predictions are at least `precision` precise.

    Args:
        labels: int (N,) true classes of the validation rows.
        probabilities: float (N, classes) the labeller's predicted probabilities of those rows.
        precision: The precision asked for, in (0, 1].

    Returns:
        ``(threshold, precision reached)``: the threshold as a float (inf when no confidence is
        precise enough, or there are no rows), and the precision of the rows at or above it.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not len(labels):
        return float("inf"), 0.0
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(labels)
    if correct.all():
        return float(confidence.min()), 1.0
    if not correct.any():
        return float("inf"), 0.0
    precisions, _, thresholds = precision_recall_curve(correct, confidence)
    good = np.flatnonzero(precisions[:-1] >= precision)  # the last precision belongs to no threshold
    if not len(good):
        return float("inf"), 0.0
    return float(thresholds[good[0]]), float(precisions[good[0]])


def unlabeled_test_rows(data, semi_supervised, fingerprint):
    """The test inputs of data folder `data`, its label file unopened (labels None), or None
    when `semi_supervised` is False; a teacher run is checked here too, before any training.

    Args:
        data: The run's data folder.
        semi_supervised: False, True, or a teacher run directory (`TrainingSettings`).
        fingerprint: The run's training data's fingerprint (`PreparedData.fingerprint`).

    Raises:
        ValueError: `data` is an in-memory data set (it has no test rows), the folder's test
            files are missing or bad (the message names the folder), or the teacher is not a
            classification run of the same data (its ``config.json``'s data fingerprint).
    """
    if semi_supervised is False:
        return None
    if isinstance(data, MultimodalDataset):
        raise ValueError("semi-supervised training learns from a data folder's test rows; `data` is an in-memory "
                         "data set: pass the folder")
    if semi_supervised is not True:
        config = read_run_config(semi_supervised)
        if config.get("task") != "classification":
            raise ValueError(f"teacher {semi_supervised}: not a classification run (task {config.get('task')!r})")
        if config.get("data", {}).get("fingerprint") != fingerprint:
            raise ValueError(f"teacher {semi_supervised}: trained on other data than this run "
                             f"({config.get('data', {}).get('source')}); a teacher must be a run of the same data")
    try:
        return load_dataset(data, "test", labels=False)
    except ValueError as error:
        raise ValueError(f"{data}: semi-supervised training needs the folder's test inputs: {error}") from None


def pseudo_label(labeller, unlabeled, validation, *, teacher=None, precision=PSEUDO_LABEL_PRECISION):
    """Labels `unlabeled` with `labeller`, keeping the rows at or above `confidence_threshold`
    calibrated on the `validation` rows.

    Returns:
        A `PseudoLabels`.

    Raises:
        ValueError: the rows do not fit the labeller's inputs (`check_model_inputs`).
    """
    check_model_inputs(labeller, unlabeled)
    predict = lambda part: np.asarray(labeller.predict(part.inputs(), batch_size=512, verbose=0))
    threshold, reached = confidence_threshold(validation.labels, predict(validation), precision=precision)
    probabilities = predict(unlabeled)
    keep = probabilities.max(axis=1) >= threshold
    rows = dataclasses.replace(unlabeled.subset(keep), labels=probabilities[keep].argmax(axis=1).astype(np.int64))
    logger.info("semi-supervised: %d of %d test rows pseudo-labelled by %s (confidence >= %.4f, %.3f precise on "
                "%d validation rows)", len(rows), len(unlabeled), teacher or "the validated model", threshold,
                reached, len(validation))
    if not len(rows):
        logger.warning("semi-supervised: no test row is confident enough; the run trains on its labelled rows only")
    return PseudoLabels(rows=rows, test_rows=len(unlabeled), threshold=threshold, validation_precision=reached,
                        teacher=None if teacher is None else str(teacher))


def label_test_rows(unlabeled, semi_supervised, validated, validation):
    """The run's `PseudoLabels`, or None when `semi_supervised` is False.

    Args:
        unlabeled: The test rows (`unlabeled_test_rows`), or None.
        semi_supervised: True (the `validated` model labels), or a teacher run directory.
        validated: The validated run's saved model.
        validation: The validated run's validation rows (they calibrate the threshold).
    """
    if semi_supervised is False:
        return None
    teacher = None if semi_supervised is True else Path(semi_supervised)
    labeller = validated if teacher is None else load_trained_model(teacher)
    return pseudo_label(labeller, unlabeled, validation, teacher=teacher)


def with_pseudo_labels(every_row, pseudo):
    """`every_row` (a `PreparedData` without validation) with `pseudo`'s rows after its training
    rows, and the ``semi_supervised`` entry of ``metrics.json`` (`PseudoLabels.record` and the
    rows trained on)."""
    logger.info("semi-supervised: fine-tuning on %s labelled rows and %d pseudo-labelled test rows",
                f"{every_row.real_rows:,}", len(pseudo.rows))
    if len(pseudo.rows):
        every_row = dataclasses.replace(every_row, train=concatenate(every_row.train, pseudo.rows))
    return every_row, {**pseudo.record(), "rows": len(every_row.train)}
