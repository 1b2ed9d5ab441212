"""Cross-modal retrieval (seed 002): a joint image-speech embedding space.

Two towers map a handwritten digit and a spoken digit into one d-dimensional space where
matching pairs score high; the score of image k and utterance l is the cosine similarity
``S_kl = x_k . y_l`` of their L2-normalized embeddings, in [-1, 1].

The towers are the two branches of one of the package's fusion models up to what enters its
fusion head (default ``hybrid_cnn``: seed 001's image CNN and speech CNN, 128 values each; or
seed 000's Models 1-4, whose Model 2 gives 512 image and 64 speech values), each followed by a
linear projection to d dimensions, BatchNormalization and L2 normalization. They are built fresh or cut out of a
trained fusion run (``init``), whose branches then start already knowing digits.

Losses over the in-batch similarity matrix (``S`` = image embeddings x audio embeddings^T):

- ``"max_margin"`` (seed 002, section 3.4): ``sum_k sum_l max(0, margin - S_kk + S_kl)``, here in
  both directions (image anchors against utterances, utterance anchors against images, as in
  Harwath & Glass 2015, seed 002's reference [1]) and averaged over the negatives. Seed 002's
  batches hold one utterance per class, so every ``l != k`` is another digit; in a random batch
  several rows share a digit, so only rows of *another digit* count as negatives.
- ``"info_nce"``: symmetric InfoNCE (CLIP-style cross-entropy over ``S / temperature`` rows and
  columns); rows of the same digit are all positives (the target spreads over them), for the
  same reason.

The saved model is a plain functional model of built-in layers (loads in safe mode); the loss
is only needed for training.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

LOSSES = ("max_margin", "info_nce")
EMBEDDING_OUTPUTS = ("image_embedding", "audio_embedding")
DEFAULT_TOWERS = "hybrid_cnn"
# Training set-up of the towers: the default recipe's augmentation without modality dropout
# (a blanked modality has nothing to match) and without label smoothing (labels only mark
# which in-batch rows are negatives).
RETRIEVAL_RECIPE = dict(name="retrieval", batch_size=128, optimizer="adamw", weight_decay=1e-5, augment=True,
                        time_mask=6, frequency_mask=3, time_shift=3, noise=0.2, utterance_normalization=True)


def _check_positive(name, value):
    if not (isinstance(value, (int, float, np.integer, np.floating)) and value > 0):
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value!r}")


def branch_features(base):
    """The image and speech features a fused model's head receives, one tensor per branch.

    Seed 000's Models 1-4 feed each branch's last hidden layer into a 10-unit head
    (``image_output`` / ``audio_output``): the towers take what enters those heads (Model 2:
    512 image, 64 speech values). Seed 001's hybrids and seed 003's FusionModel concatenate
    their encoders' outputs in ``fusion_concat``: the towers take those (128 and 128).

    Returns:
        dict ``{"image": KerasTensor, "audio": KerasTensor}`` of the graph of `base`.

    Raises:
        ValueError: if `base` is not a two-branch fusion model of this package.
    """
    names = {layer.name for layer in base.layers}
    if {"image_output", "audio_output"} <= names:
        return {m: base.get_layer(f"{m}_output").input for m in ("image", "audio")}
    if "fusion_concat" in names:
        features = {}
        for tensor in base.get_layer("fusion_concat").input:
            producer = tensor._keras_history[0].name  # the layer that made the tensor
            features[producer.split("_")[0]] = tensor
        if set(features) == {"image", "audio"}:
            return features
    raise ValueError(f"model {base.name!r} is not a two-branch fusion model (Models 1-4, hybrid_cnn, "
                     f"hybrid_cnn_lstm, fusion_1dcnn); retrieval towers are cut from one of those")


def towers_from(base, *, embedding_dim=128, name="retrieval"):
    """Cuts the image and speech branches out of a fusion model and adds the shared space.

    Args:
        base: A functional fusion model (`create_model`, or a trained run's ``model.keras``):
            seed 000's Models 1-4, seed 001's hybrids or seed 003's FusionModel.
        embedding_dim: d, the size of the shared space (int > 0).
        name: Model name.

    Returns:
        A functional `keras.Model` with inputs ``image`` (N, 28, 28, 1) and ``audio`` (N, 507 or
        1560) float32 and outputs ``{"image_embedding": (N, d), "audio_embedding": (N, d)}``,
        float32, each row of unit L2 norm: `branch_features`, then ``{modality}_projection``
        (Dense, linear), ``{modality}_projection_bn`` (BatchNormalization) and
        ``{modality}_embedding`` (UnitNormalization). It shares its
        branch layers (and weights) with `base`.

    Raises:
        ValueError: if `base` is not a fusion model (see `branch_features`), or
            `embedding_dim` is not a positive integer.
    """
    import keras
    from keras import layers

    from mmdigits_keras.blocks import BN_MOMENTUM

    if not (isinstance(embedding_dim, (int, np.integer)) and embedding_dim > 0):
        raise ValueError(f"`embedding_dim` must be a positive integer. Received: embedding_dim={embedding_dim!r}")
    outputs = {}
    for modality, features in branch_features(base).items():
        x = layers.Dense(int(embedding_dim), name=f"{modality}_projection")(features)
        # Branch features are post-ReLU, all >= 0: projected as they are, every row starts
        # pointing the same way (cosine ~1 for all pairs; the loss sat at 2 x margin for the
        # first 5 epochs). Centring each dimension over the batch removes that shared direction.
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{modality}_projection_bn")(x)
        outputs[f"{modality}_embedding"] = layers.UnitNormalization(name=f"{modality}_embedding")(x)
    return keras.Model(inputs=base.input, outputs={k: outputs[k] for k in EMBEDDING_OUTPUTS}, name=name)


def build_retrieval_model(model=DEFAULT_TOWERS, *, embedding_dim=128, init=None, audio_features=507, audio_mean=None,
                          audio_variance=None, utterance_normalization=True, name="retrieval"):
    """Builds the two-tower image-speech embedding model of seed 002.

    Args:
        model: The registry fusion model whose branches become the towers (ignored with
            `init`): ``"hybrid_cnn"`` (default: seed 001's image and speech CNN encoders, the
            speech CNN generalizing best to unseen speakers in our measurements, README) or
            one of ``"model1"``..``"model4"`` (seed 000), ``"hybrid_cnn_lstm"``,
            ``"fusion_1dcnn"``.
        embedding_dim: d, the size of the shared, L2-normalized space (seed 002: h = 512).
        init: Optional run directory (or ``.keras`` file) of a trained fusion run; the towers
            start from its branches' weights (and its speech standardization).
        audio_features: 507 (MFCC) or 1560 (log-mel) values per utterance.
        audio_mean: Optional (audio_features,) training-audio mean (with `audio_variance`).
        audio_variance: Optional (audio_features,) training-audio variance.
        utterance_normalization: Per-utterance mean/variance normalization of each coefficient
            over the 39 frames (see `build_model`); on by default because the speech tower
            must match speakers it never heard.
        name: Model name.

    Returns:
        The towers as in `towers_from`: inputs ``image`` / ``audio``, outputs
        ``image_embedding`` / ``audio_embedding`` (N, embedding_dim), unit L2 norm.

    Raises:
        ValueError: an unknown or unimodal `model`, an `init` that is not a loadable fusion
            run, or a bad `embedding_dim`.

    Reference:
        Seed 002, section 3.4 (alignment model); Harwath & Glass, ASRU 2015.
    """
    if init is not None:
        from mmdigits_keras.training import load_trained_model

        base = load_trained_model(init)
    else:
        from mmdigits_keras.registry import create_model

        base = create_model(model, audio_features=audio_features, audio_mean=audio_mean,
                            audio_variance=audio_variance, utterance_normalization=utterance_normalization)
    return towers_from(base, embedding_dim=embedding_dim, name=name)


def _split_pair(y_true, y_pred):
    from keras import ops

    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    dim = ops.shape(y_pred)[-1] // 2
    return labels, y_pred[:, :dim], y_pred[:, dim:]


def max_margin_loss(labels, image_embedding, audio_embedding, *, margin=0.2):
    """Seed 002's max-margin ranking loss over in-batch negatives, both directions.

    Args:
        labels: int (B,) digit of each pair.
        image_embedding: float32 (B, d), unit-norm rows.
        audio_embedding: float32 (B, d), unit-norm rows; row k is image k's utterance.
        margin: The hinge margin (> 0) in cosine-similarity units.

    Returns:
        float32 (B,): per pair, the mean hinge ``max(0, margin - S_kk + S_kl)`` over the
        other-digit utterances l plus the same with utterance k as the anchor.
    """
    from keras import ops

    scores = ops.matmul(image_embedding, ops.transpose(audio_embedding))
    positive = ops.diagonal(scores)
    negative = ops.cast(ops.not_equal(labels[:, None], labels[None, :]), scores.dtype)
    count = ops.maximum(ops.sum(negative, axis=1), 1.0)  # symmetric mask: rows and columns alike
    image_anchor = ops.sum(negative * ops.relu(margin - positive[:, None] + scores), axis=1)
    audio_anchor = ops.sum(negative * ops.relu(margin - positive[None, :] + scores), axis=0)
    return (image_anchor + audio_anchor) / count


def info_nce_loss(labels, image_embedding, audio_embedding, *, temperature=0.1):
    """Symmetric InfoNCE over the in-batch similarity matrix; same-digit rows are positives.

    Args:
        labels: int (B,) digit of each pair.
        image_embedding: float32 (B, d), unit-norm rows.
        audio_embedding: float32 (B, d), unit-norm rows.
        temperature: Softmax temperature (> 0) applied to cosine similarities.

    Returns:
        float32 (B,): per pair, the mean of the image->speech and speech->image cross-entropies
        against the uniform distribution over same-digit rows.
    """
    from keras import ops

    logits = ops.matmul(image_embedding, ops.transpose(audio_embedding)) / temperature
    positive = ops.cast(ops.equal(labels[:, None], labels[None, :]), logits.dtype)
    target = positive / ops.sum(positive, axis=1, keepdims=True)  # symmetric: columns alike
    image_anchor = -ops.sum(target * ops.log_softmax(logits, axis=1), axis=1)
    audio_anchor = -ops.sum(target * ops.log_softmax(logits, axis=0), axis=0)
    return (image_anchor + audio_anchor) / 2.0


def _ranking_loss_class():
    import keras

    class PairRankingLoss(keras.losses.Loss):
        """A Keras loss on ``y_pred`` = concat(image, audio embeddings) and ``y_true`` = labels."""

        def __init__(self, kind="max_margin", *, margin=0.2, temperature=0.1, name="ranking_loss"):
            super().__init__(name=name)
            self.kind, self.margin, self.temperature = kind, margin, temperature

        def call(self, y_true, y_pred):
            labels, image, audio = _split_pair(y_true, y_pred)
            if self.kind == "max_margin":
                return max_margin_loss(labels, image, audio, margin=self.margin)
            return info_nce_loss(labels, image, audio, temperature=self.temperature)

    return PairRankingLoss


def ranking_loss(kind="max_margin", *, margin=0.2, temperature=0.1):
    """A `keras.losses.Loss` for `training_model`'s output (see `max_margin_loss`, `info_nce_loss`).

    Raises:
        ValueError: an unknown `kind` or a non-positive `margin` / `temperature`.
    """
    if kind not in LOSSES:
        raise ValueError(f"`loss` must be one of {list(LOSSES)}. Received: loss={kind!r}")
    _check_positive("margin", margin)
    _check_positive("temperature", temperature)
    return _ranking_loss_class()(kind, margin=float(margin), temperature=float(temperature))


def training_model(towers):
    """The towers with both embeddings concatenated into one (N, 2d) output, for `fit` with
    `ranking_loss` (a Keras loss sees one prediction tensor). Shares all weights with `towers`."""
    import keras
    from keras import layers

    pair = layers.Concatenate(name="pair_embeddings")([towers.output[name] for name in EMBEDDING_OUTPUTS])
    return keras.Model(inputs=towers.input, outputs=pair, name=f"{towers.name}_pairs")


def embed(towers, dataset, *, batch_size=512):
    """Embeds every row of a `MultimodalDataset`.

    Returns:
        (image_embeddings, audio_embeddings): two float32 arrays (N, d) with unit-norm rows.
    """
    out = towers.predict(dataset.inputs(), batch_size=batch_size, verbose=0)
    return np.asarray(out["image_embedding"], np.float32), np.asarray(out["audio_embedding"], np.float32)


def train_retrieval(
    data,
    *,
    out,
    loss="max_margin",
    margin=0.2,
    temperature=0.1,
    embedding_dim=128,
    model=DEFAULT_TOWERS,
    init=None,
    epochs=50,
    batch_size=128,
    learning_rate=1e-3,
    val_fraction=0.2,
    seed=0,
    patience=10,
    overwrite=False,
    verbose="auto",
):
    """Trains the two towers on paired rows and writes a retrieval run directory.

    Training uses the default recipe's speech augmentation and image jitter (no modality
    dropout, no label smoothing), AdamW, EarlyStopping on the validation loss (best weights
    restored) and ReduceLROnPlateau, as `train` does. The run directory holds ``model.keras``
    (the towers, audio standardization inside), ``config.json`` (``"task": "retrieval"``),
    ``history.csv``, ``metrics.json`` (seed 002's annotation / retrieval accuracy on the
    validation rows, 100 trials per class) and ``curves.png``; it appears atomically.

    Args:
        data: A data folder (its ``train`` split) or a labelled `MultimodalDataset`.
        out: Run directory to write (must not exist unless `overwrite`).
        loss: ``"max_margin"`` (seed 002) or ``"info_nce"``.
        margin: Hinge margin for ``max_margin`` (cosine units, > 0).
        temperature: Softmax temperature for ``info_nce`` (> 0).
        embedding_dim: d, the size of the shared space.
        model: Registry fusion model whose branches form the towers (without `init`); see
            `build_retrieval_model`.
        init: Optional fusion run directory to start the towers from.
        epochs: Maximum epochs (int > 0).
        batch_size: Pairs per step (int > 1; in-batch negatives come from the same batch).
        learning_rate: AdamW learning rate (> 0).
        val_fraction: Stratified validation fraction in (0, 1).
        seed: Seed of split, initialization, shuffling and augmentation.
        patience: EarlyStopping patience (epochs).
        overwrite: Replace an existing `out`.
        verbose: Keras `fit` verbosity.

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data, a bad argument value, an `init` that is not a fusion run, or
            an existing `out` without `overwrite`.
    """
    import keras
    import tensorflow as tf

    from mmdigits_keras.data import MultimodalDataset, load_dataset, train_val_split
    from mmdigits_keras.recipes import Recipe, make_optimizer, training_dataset
    from mmdigits_keras.registry import model_config
    from mmdigits_keras.retrieval_eval import protocol_accuracy, similarities
    from mmdigits_keras.training import (check_positive, fit_audio_statistics, fit_callbacks, prepare_output,
                                         run_metadata, write_run)

    objective = ranking_loss(loss, margin=margin, temperature=temperature)
    if init is None:
        model_config(model)  # an unknown name fails before any data is read
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        check_positive(arg, value)
    check_positive("learning_rate", learning_rate, float)
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be at least 2 (negatives come from the batch). Received: {batch_size}")
    prepare_output(out, overwrite=overwrite)

    dataset = data if isinstance(data, MultimodalDataset) else load_dataset(data, "train")
    source, rows, fingerprint = dataset.source, len(dataset), dataset.fingerprint()
    train_part, val_part = train_val_split(dataset, val_fraction=val_fraction, seed=seed)
    del dataset
    audio_mean, audio_variance = fit_audio_statistics(train_part.audio)

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    towers = build_retrieval_model(model, embedding_dim=embedding_dim, init=init,
                                   audio_features=int(train_part.audio.shape[1]), audio_mean=audio_mean,
                                   audio_variance=audio_variance)
    net = training_model(towers)
    plan = Recipe(**{**RETRIEVAL_RECIPE, "batch_size": int(batch_size)})
    net.compile(optimizer=make_optimizer(plan, learning_rate=learning_rate), loss=objective)
    # A short last batch (possibly one row) would have few or no negatives.
    train_data = training_dataset(train_part, plan, seed=seed, drop_remainder=True)
    val_data = tf.data.Dataset.from_tensor_slices((val_part.inputs(), val_part.labels)).batch(512)
    started = time.perf_counter()
    history = net.fit(train_data, validation_data=val_data, epochs=int(epochs), shuffle=False,  # tf.data shuffles
                      callbacks=fit_callbacks(patience=patience), verbose=verbose)
    seconds = time.perf_counter() - started
    validation = protocol_accuracy(similarities(towers, val_part), val_part.labels, seed=seed)

    config = {
        "task": "retrieval",
        "builder": "build_retrieval_model",
        "model_kwargs": {"model": model if init is None else None, "embedding_dim": int(embedding_dim),
                         "init": None if init is None else str(Path(init).resolve())},
        "training": {"loss": loss, "margin": float(margin), "temperature": float(temperature),
                     "epochs": int(epochs), "batch_size": int(batch_size), "learning_rate": float(learning_rate),
                     "val_fraction": float(val_fraction), "seed": int(seed), "patience": int(patience),
                     "recipe": dataclasses.asdict(plan)},
        **run_metadata(data, source, rows=rows, fingerprint=fingerprint, train_rows=len(train_part),
                       validation_rows=len(val_part)),
    }
    metrics = {
        "val_annotation_accuracy": validation["annotation_accuracy"],
        "val_retrieval_accuracy": validation["retrieval_accuracy"],
        "validation_rows": len(val_part),
        "epochs": len(history.history["loss"]),
        "seconds": round(seconds, 2),
        "data": source,
    }
    return write_run(out, towers, config=config, metrics=metrics, history=history, overwrite=overwrite,
                     title=f"retrieval ({loss}) on {Path(source.split(' ')[0]).name}")
