"""Speaker-adversarial training: speech features that do not tell who speaks.

A speaker classifier reads the speech features of a model behind a gradient-reversal layer
(domain-adversarial training, Ganin & Lempitsky, ICML 2015; speaker-invariant training, Meng et
al., ICASSP 2018). The classifier learns to name the training speaker; the reversed gradient
teaches the speech encoder to make that impossible, while the task loss keeps the digit in
the features. Rows whose speaker is unknown (synthetic voices, data sets without
``groups_{split}.csv``) and rows whose speech was blanked by modality dropout do not count.

The adversary exists at training time only: `attach_speaker_adversary` wraps the model that is
fitted; the model that is saved is the task model itself, built-in layers only.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
from keras import layers, ops

from mmdigits_keras.utils.checks import check_non_negative

logger = logging.getLogger("mmdigits_keras")

SPEAKER_INPUT = "speaker"
UNKNOWN_SPEAKER = -1


@keras.saving.register_keras_serializable(package="mmdigits_keras")
class GradientReversal(layers.Layer):
    """Identity forward; multiplies the gradient by ``-scale`` backward (Ganin & Lempitsky 2015).

    Written as ``held + scale * (held - x)`` with ``held = stop_gradient(x)``: the forward value
    is exactly `x` (``held - x`` is exactly 0) and the only path a gradient takes is
    ``-scale * x``. Backend-independent (no custom gradient).

    Args:
        scale: lambda >= 0, the size of the reversed gradient (0: the features get no gradient
            from what follows).
        **kwargs: `keras.layers.Layer` arguments (``name``, ...).

    Raises:
        ValueError: `scale` is negative or not a number.
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        check_non_negative("scale", scale)
        self.scale = float(scale)

    def call(self, inputs):
        held = ops.stop_gradient(inputs)
        return held + self.scale * (held - inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def speaker_loss(speakers, logits):
    """Mean sparse cross-entropy of the speaker classifier over the rows whose speaker is known.

    Args:
        speakers: int (B,) speaker index per row, `UNKNOWN_SPEAKER` (-1) where unknown.
        logits: float (B, S) speaker logits.

    Returns:
        float32 scalar: the mean over known rows (0 when no row is known).
    """
    speakers = ops.reshape(ops.cast(speakers, "int32"), (-1,))
    known = ops.cast(ops.greater_equal(speakers, 0), "float32")
    entropy = keras.losses.sparse_categorical_crossentropy(ops.maximum(speakers, 0), ops.cast(logits, "float32"),
                                                           from_logits=True)
    return ops.sum(entropy * known) / ops.maximum(ops.sum(known), 1.0)


@keras.saving.register_keras_serializable(package="mmdigits_keras")
class SpeakerAdversary(layers.Layer):
    """A speaker classifier behind `GradientReversal` that adds its loss to the model's.

    The classifier reads the features scaled to unit root-mean-square per row, so that the
    encoder can only hide the speaker by changing what its features say, not by their size.

    Called on ``[passthrough, features, speakers]``: returns `passthrough` unchanged (so the
    layer sits on the path to the model's output and runs in every step), adds `speaker_loss`
    through `add_loss`, and logs it with the classifier's accuracy on the known rows as the
    fitted model's ``speaker_loss`` and ``speaker_accuracy`` metrics (Keras collects a
    sublayer's metrics; validation rows count as unknown, so their ``val_`` values are 0).

    Args:
        num_speakers: S >= 2, the training speakers.
        scale: lambda of the gradient reversal (>= 0).
        units: Width of the classifier's hidden ReLU layer.
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, num_speakers, *, scale=1.0, units=64, **kwargs):
        super().__init__(**kwargs)
        self.num_speakers, self.scale, self.units = int(num_speakers), float(scale), int(units)
        self.reversal = GradientReversal(self.scale, name=f"{self.name}_reversal")
        self.hidden = layers.Dense(self.units, activation="relu", name=f"{self.name}_hidden")
        self.classifier = layers.Dense(self.num_speakers, name=f"{self.name}_logits")
        self.loss_tracker = keras.metrics.Mean(name="speaker_loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="speaker_accuracy")

    def build(self, input_shapes):
        features = input_shapes[1]
        self.hidden.build(features)
        self.classifier.build((*features[:-1], self.units))

    def speaker_logits(self, features):
        """(B, S) speaker logits of (B, d) features, read at unit root-mean-square per row.

        The classifier sees each row's direction, not its size: with raw features the encoder
        won the game by growing them until the classifier was confidently wrong (measured in
        the fused model: speaker loss 13-22 against ln 2 = 0.69 at chance, and the digit
        accuracy fell below the image alone's; docs/performance.md).
        """
        reversed_ = self.reversal(features)
        unit = reversed_ * ops.rsqrt(ops.mean(ops.square(reversed_), axis=-1, keepdims=True) + 1e-6)
        return self.classifier(self.hidden(unit))

    def call(self, inputs):
        passthrough, features, speakers = inputs
        logits = self.speaker_logits(features)
        loss = speaker_loss(speakers, logits)
        self.add_loss(loss)
        speakers = ops.reshape(ops.cast(speakers, "int32"), (-1,))
        known = ops.cast(ops.greater_equal(speakers, 0), "float32")
        self.loss_tracker.update_state(loss, sample_weight=ops.sum(known))
        self.accuracy_tracker.update_state(ops.maximum(speakers, 0), logits, sample_weight=known)
        return passthrough

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "num_speakers": self.num_speakers, "scale": self.scale, "units": self.units}


def speaker_index(speakers, names):
    """int32 (N,) index of each row's speaker in `names`; -1 for None or a speaker not in `names`.

    Args:
        speakers: (N,) speaker ids (str, or None where unknown), or None (all unknown).
        names: The training speakers, in index order.
    """
    if speakers is None:
        return None
    lookup = {name: i for i, name in enumerate(names)}
    return np.asarray([lookup.get(s, UNKNOWN_SPEAKER) for s in speakers], dtype=np.int32)


def training_speakers(part):
    """The distinct known speakers of a training part, sorted (empty without speaker ids)."""
    if part.speakers is None:
        return []
    return sorted({s for s in part.speakers if s is not None})


def attach_speaker_adversary(net, features, *, speakers, scale, name="speaker_adversary"):
    """The model to fit: `net` plus a speaker input and a `SpeakerAdversary` on `features`.

    Args:
        net: A functional model with dict inputs (``image``, ``audio``).
        features: A symbolic (N, d) tensor of `net`'s graph: the speech features to make
            speaker-invariant (`task_features(net)["audio"]`, or a speech embedding).
        speakers: The training speakers (`training_speakers`), at least two.
        scale: lambda of the gradient reversal (> 0).
        name: Name of the adversary layer and of the returned model's suffix.

    Returns:
        A functional `keras.Model` sharing every weight of `net`, with inputs ``image``,
        ``audio`` and ``speaker`` (int32, (N,), -1 where unknown) and `net`'s output.

    Raises:
        ValueError: fewer than two speakers, or `net` without dict inputs.
    """
    if len(speakers) < 2:
        raise ValueError(f"speaker-adversarial training needs at least two training speakers; got {len(speakers)}")
    if not isinstance(net.input, dict):
        raise ValueError(f"model {net.name!r} needs named (dict) inputs for a speaker input")
    speaker = keras.Input(shape=(), dtype="int32", name=SPEAKER_INPUT)
    output = SpeakerAdversary(len(speakers), scale=scale, name=name)([net.output, features, speaker])
    return keras.Model(inputs={**net.input, SPEAKER_INPUT: speaker}, outputs=output, name=f"{net.name}_{name}")


def takes_speakers(model):
    """Whether `model` has a ``speaker`` input (`attach_speaker_adversary`)."""
    return isinstance(model.input, dict) and SPEAKER_INPUT in model.input


def with_speaker_adversary(net, features, part, recipe):
    """`net` with a speaker adversary when `recipe` asks for one (``speaker_adversary`` > 0) and
    it can be trained; otherwise `net` itself, with a logged warning saying why not.

    Args:
        net: The model to fit (dict inputs).
        features: Its speech features (symbolic (N, d) tensor of its graph), or None for a
            model without speech.
        part: The training `MultimodalDataset` (its ``speakers``).
        recipe: The `Recipe`.

    Returns:
        The model to fit (`attach_speaker_adversary`) or `net`.

    Raises:
        ValueError: a negative or non-numeric ``recipe.speaker_adversary``.
    """
    check_non_negative("speaker_adversary", recipe.speaker_adversary)
    if not recipe.speaker_adversary:
        return net
    if features is None:
        logger.warning("speaker-adversarial training skipped: model %r has no speech branch", net.name)
        return net
    names = training_speakers(part)
    if len(names) < 2:
        logger.warning("speaker-adversarial training skipped: the training rows name %d speaker(s) (it needs the "
                       "data set's speaker ids, groups_train.csv, and two or more speakers)", len(names))
        return net
    return attach_speaker_adversary(net, features, speakers=names, scale=recipe.speaker_adversary)
