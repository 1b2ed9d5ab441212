"""Evaluation and analysis of trained runs: the papers' pictures for your own models.

Seed 001 judges models by accuracy and macro-F1, by which samples each model gets wrong (its
Venn diagram of error indices and a gallery of ambiguous digits) and by how well embeddings
cluster (PCA -> t-SNE, k-means; also seeds 000 and 003). Robustness to noise on each modality
and to a missing modality follows MultiBench. Metrics, PCA, t-SNE and k-means are
scikit-learn's; plots are matplotlib's (Venn diagrams: matplotlib-venn).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.data import NUM_CLASSES, load_dataset, train_val_split
from mmdigits_keras.io_utils import atomic_write, read_json, write_json

SPLITS = ("validation", "test")
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Writes a matplotlib figure as PNG atomically and closes it; returns the path."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
    _pyplot().close(fig)
    return Path(path)


def evaluation_rows(run, data, split):
    """The labelled rows a run is judged on.

    ``validation``: the run's own validation rows (its split is rebuilt from ``config.json``:
    `val_fraction` and `seed` on the folder's training files). ``test``: the folder's test
    files, which need labels (``y_test.csv`` as `mmdigits data build` writes, or Khacef's).

    Raises:
        ValueError: an unknown split, or a test split without labels.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
    if split == "test":
        dataset = load_dataset(data, "test")
        if dataset.labels is None:
            raise ValueError(f"{data}: the test files have no labels (no y_test.csv); use --split validation")
        return dataset
    config = read_json(Path(run) / "config.json")  # a ValueError names a folder that is not a run
    training = config["training"]
    return train_val_split(load_dataset(data, "train"), val_fraction=training["val_fraction"], seed=training["seed"])[1]


def classification_summary(labels, predicted):
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        labels: int (N,) true classes 0..9.
        predicted: int (N,) predicted classes.

    Returns:
        (metrics dict, per-class DataFrame indexed by class, confusion matrix (10, 10) int array
        with true classes as rows).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    classes = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                             index=pd.Index(classes, name="class"))
    metrics = {"accuracy": float(accuracy_score(labels, predicted)),
               # macro over the classes present (scikit-learn's default), as `train` reports it
               "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
               "rows": int(len(labels))}
    return metrics, per_class, confusion_matrix(labels, predicted, labels=classes)


def evaluate(run, data, *, split="validation"):
    """Evaluates one run and writes ``RUN/eval/<split>/``.

    Files: ``metrics.json`` (accuracy, macro-F1, rows), ``per_class.csv``, ``confusion.csv``,
    ``confusion.png``, ``predictions.csv`` (row id, label, prediction, correct).

    Returns:
        dict with ``metrics``, ``predicted`` (N,), ``labels`` (N,), ``dataset`` and ``dir``.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    from mmdigits_keras.submission import predict_labels
    from mmdigits_keras.training import load_trained_model

    dataset = evaluation_rows(run, data, split)
    predicted = predict_labels(load_trained_model(run), dataset)
    metrics, per_class, confusion = classification_summary(dataset.labels, predicted)
    out = Path(run) / "eval" / split
    write_json(out / "metrics.json", {**metrics, "split": split, "data": dataset.source})
    atomic_write(out / "per_class.csv", lambda tmp: per_class.to_csv(tmp))
    atomic_write(out / "confusion.csv", lambda tmp: pd.DataFrame(confusion).rename_axis("true").to_csv(tmp))
    atomic_write(out / "predictions.csv", lambda tmp: pd.DataFrame(
        {"row_id": dataset.ids, "label": dataset.labels, "predicted": predicted,
         "correct": predicted == dataset.labels}).to_csv(tmp, index=False))
    fig, ax = _pyplot().subplots(figsize=(5.5, 5))
    ConfusionMatrixDisplay(confusion, display_labels=list(range(NUM_CLASSES))).plot(ax=ax, colorbar=False)
    ax.set_title(f"{Path(run).name}: {split} accuracy {metrics['accuracy']:.4f}")
    save_figure(fig, out / "confusion.png")
    return {"metrics": metrics, "predicted": predicted, "labels": dataset.labels, "dataset": dataset, "dir": out}


def error_overlap(wrong):
    """Counts of wrongly predicted rows shared between models (the data of a Venn diagram).

    Args:
        wrong: dict name -> set of row indices the model gets wrong.

    Returns:
        DataFrame with one row per non-empty combination of models: ``models`` (joined by
        " & "), ``rows`` (wrong for exactly those models, right for the others).
    """
    names = list(wrong)
    every = set().union(*wrong.values()) if wrong else set()
    counts = {}
    for row in every:
        key = tuple(name for name in names if row in wrong[name])
        counts[key] = counts.get(key, 0) + 1
    records = [{"models": " & ".join(key), "rows": n} for key, n in sorted(counts.items(), key=lambda kv: (len(kv[0]), kv[0]))]
    return pd.DataFrame(records, columns=["models", "rows"])


def _venn(wrong, path):
    from matplotlib_venn import venn2, venn3

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    sets, names = list(wrong.values()), list(wrong)
    (venn2 if len(sets) == 2 else venn3)(sets, set_labels=names, ax=ax)
    ax.set_title("rows each model gets wrong")
    return save_figure(fig, path)


def _gallery(dataset, predictions, image_only, fused, path, limit=12):
    """Rows the image-only model gets wrong and the fused one right: digit, MFCC heat map."""
    rows = np.flatnonzero((predictions[image_only] != dataset.labels) & (predictions[fused] == dataset.labels))[:limit]
    plt = _pyplot()
    count = max(len(rows), 1)
    fig, axes = plt.subplots(2, count, figsize=(1.8 * count, 4), squeeze=False)
    for column, row in enumerate(rows):
        axes[0, column].imshow(dataset.images[row, :, :, 0], cmap="gray")
        width = dataset.audio.shape[1] // 39
        axes[1, column].imshow(dataset.audio[row].reshape(39, width).T, aspect="auto", origin="lower", cmap="magma")
        text = "\n".join(f"{name}: {predictions[name][row]}" for name in predictions)
        axes[0, column].set_title(f"true {dataset.labels[row]}\n{text}", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    if not len(rows):
        axes[0, 0].text(0.5, 0.5, "no such rows", ha="center")
    fig.suptitle(f"{image_only} wrong, {fused} right ({len(rows)} shown)", fontsize=9, y=1.08)
    return save_figure(fig, path)


def compare(results, out, *, image_only=None, fused=None):
    """Compares evaluated runs: table (Markdown + CSV), error overlap (CSV + Venn), gallery.

    Args:
        results: dict run name -> the dict `evaluate` returned (same rows for every run).
        out: Folder for ``comparison.md``, ``comparison.csv``, ``error_overlap.csv``,
            ``venn.png`` (2-3 runs) and ``gallery.png`` (when `image_only` and `fused` given).
        image_only, fused: Run names for the gallery.

    Returns:
        dict of written paths by kind.
    """
    out = Path(out)
    table = pd.DataFrame([{"run": name, **r["metrics"]} for name, r in results.items()])
    written = {"table_csv": atomic_write(out / "comparison.csv", lambda tmp: table.to_csv(tmp, index=False))}
    lines = ["| run | accuracy | macro-F1 | rows |", "|---|---|---|---|"]
    lines += [f"| {r.run} | {r.accuracy:.4f} | {r.macro_f1:.4f} | {r.rows} |" for r in table.itertuples()]
    written["table_md"] = atomic_write(out / "comparison.md", lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    wrong = {name: set(np.flatnonzero(r["predicted"] != r["labels"]).tolist()) for name, r in results.items()}
    overlap = error_overlap(wrong)
    written["overlap_csv"] = atomic_write(out / "error_overlap.csv", lambda tmp: overlap.to_csv(tmp, index=False))
    if 2 <= len(wrong) <= 3:
        written["venn"] = _venn(wrong, out / "venn.png")
    if image_only in results and fused in results:
        dataset = results[fused]["dataset"]
        predictions = {name: r["predicted"] for name, r in results.items()}
        written["gallery"] = _gallery(dataset, predictions, image_only, fused, out / "gallery.png")
    return written


def _embedding_layers(model):
    """Names of the image-branch, audio-branch and fused embedding layers present in `model`."""
    flat = [layer for layer in model.layers if len(layer.output.shape) == 2 and layer.name not in ("image", "audio")]
    found = {}
    for key, prefix in (("image", "image_"), ("audio", "audio_"), ("fused", "fusion_")):
        candidates = [layer.name for layer in flat if layer.name.startswith(prefix)
                      and not layer.name.endswith(("_output", "_concat")) and "normalization" not in layer.name
                      and "utterance" not in layer.name]
        if candidates:
            found[key] = candidates[-1]
    return found


def embeddings(run, dataset, out, *, max_rows=1000, seed=0):
    """PCA(50) -> t-SNE(2) scatter by label and by k-means(10) cluster, with NMI and ARI.

    For each of the image branch, the audio branch and the fused layer that the model has.

    Returns:
        DataFrame with ``embedding``, ``layer``, ``dims``, ``nmi``, ``ari`` (k-means against
        labels), and writes ``embeddings_<name>.png`` and ``embeddings.csv`` under `out`.
    """
    import keras
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from mmdigits_keras.training import load_trained_model

    model = load_trained_model(run)
    rows = np.random.default_rng(seed).permutation(len(dataset))[:max_rows]
    part = dataset.subset(np.sort(rows))
    layers = _embedding_layers(model)
    extractor = keras.Model(model.inputs, {k: model.get_layer(v).output for k, v in layers.items()})
    features = extractor.predict(part.inputs(), batch_size=512, verbose=0)
    plt = _pyplot()
    records = []
    for key, layer in layers.items():
        values = np.asarray(features[key], dtype=np.float64)
        reduced = PCA(n_components=min(50, values.shape[1], len(values))).fit_transform(values)
        perplexity = float(min(30, max(5, (len(values) - 1) // 4)))
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
        clusters = KMeans(n_clusters=NUM_CLASSES, n_init=10, random_state=seed).fit_predict(reduced)
        nmi = normalized_mutual_info_score(part.labels, clusters)
        ari = adjusted_rand_score(part.labels, clusters)
        records.append({"embedding": key, "layer": layer, "dims": values.shape[1], "nmi": nmi, "ari": ari})
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, colour, title in ((axes[0], part.labels, "labels"), (axes[1], clusters, "k-means clusters")):
            scatter = ax.scatter(points[:, 0], points[:, 1], c=colour, cmap="tab10", s=6)
            ax.set_title(f"{key} ({layer}): {title}")
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(scatter, ax=axes, ticks=range(NUM_CLASSES))
        fig.suptitle(f"PCA(50) -> t-SNE(2), {len(part)} rows; k-means NMI {nmi:.3f}, ARI {ari:.3f}")
        save_figure(fig, Path(out) / f"embeddings_{key}.png")
    table = pd.DataFrame(records, columns=["embedding", "layer", "dims", "nmi", "ari"])
    atomic_write(Path(out) / "embeddings.csv", lambda tmp: table.to_csv(tmp, index=False))
    return table


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
    from mmdigits_keras.submission import predict_labels
    from mmdigits_keras.training import load_trained_model

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
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [2, 2, 1.4]})
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


def training_curves(history, path, *, title=""):
    """Loss and (when logged) accuracy per epoch, training and validation, from a history
    frame -> PNG."""
    plt = _pyplot()
    metrics = [m for m in ("loss", "accuracy") if m in history]  # retrieval runs log no accuracy
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for column, style in ((metric, "-"), (f"val_{metric}", "--")):
            if column in history:
                ax.plot(history["epoch"], history[column], style, marker="o", label=column)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)
