"""Robustness of trained runs to noise on each modality and to a missing modality (MultiBench's
way of stress-testing multimodal models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.training import load_trained_model, predict_labels
from mmdigits_keras.utils.files import atomic_write
from mmdigits_keras.utils.plotting import save_figure, subplots

NOISE_LEVELS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def robustness(models, dataset, out, *, levels=NOISE_LEVELS, seed=0):
    """Accuracy against noise on each modality, and with each modality missing.

    Image noise: Gaussian with standard deviation `level` added to pixels in [0, 1], clipped.
    Speech noise: Gaussian with `level` times each column's standard deviation added to the
    features. Missing: that input set to zeros.

    Args:
        models: dict name -> run directory.
        dataset: The labelled rows (`MultimodalDataset`).
        out: Folder for ``robustness.csv`` and ``robustness.png``.

    Returns:
        DataFrame with ``model``, ``condition`` (image_noise / audio_noise / image_missing /
        audio_missing), ``level``, ``accuracy``.
    """
    rng = np.random.default_rng(seed)
    image_noise = rng.standard_normal(dataset.images.shape).astype(np.float32)
    audio_noise = (rng.standard_normal(dataset.audio.shape) * dataset.audio.std(axis=0)).astype(np.float32)
    records = []
    for name, run in models.items():
        model = load_trained_model(run)

        def accuracy(images, audio):
            variant = dataset.__class__(images=images, audio=audio, labels=dataset.labels, ids=dataset.ids)
            return float(np.mean(predict_labels(model, variant) == dataset.labels))

        for level in levels:
            noisy = np.clip(dataset.images + level * image_noise, 0, 1)
            records.append({"model": name, "condition": "image_noise", "level": level,
                            "accuracy": accuracy(noisy, dataset.audio)})
            records.append({"model": name, "condition": "audio_noise", "level": level,
                            "accuracy": accuracy(dataset.images, dataset.audio + level * audio_noise)})
        records.append({"model": name, "condition": "image_missing", "level": None,
                        "accuracy": accuracy(np.zeros_like(dataset.images), dataset.audio)})
        records.append({"model": name, "condition": "audio_missing", "level": None,
                        "accuracy": accuracy(dataset.images, np.zeros_like(dataset.audio))})
    table = pd.DataFrame(records)
    atomic_write(Path(out) / "robustness.csv", lambda tmp: table.to_csv(tmp, index=False))
    fig, axes = subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [2, 2, 1.4]})
    for ax, condition, label in ((axes[0], "image_noise", "pixel noise SD (pixels in [0, 1])"),
                                 (axes[1], "audio_noise", "speech noise (x column SD)")):
        for name in models:
            rows = table[(table["model"] == name) & (table["condition"] == condition)]
            ax.plot(rows["level"], rows["accuracy"], marker="o", label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    missing = table[table["condition"].str.endswith("missing")]
    for i, name in enumerate(models):
        values = missing[missing["model"] == name].set_index("condition")["accuracy"]
        axes[2].bar(np.arange(2) + i * 0.8 / len(models), [values["image_missing"], values["audio_missing"]],
                    width=0.8 / len(models), label=name)
    axes[2].set_xticks(np.arange(2) + 0.4 - 0.4 / len(models), ["image missing", "speech missing"])
    axes[2].set_ylim(0, 1.02)
    fig.suptitle("robustness: accuracy under noise and with a modality missing")
    save_figure(fig, Path(out) / "robustness.png")
    return table
