"""How well a model's features cluster by digit: PCA -> t-SNE pictures and k-means scores
(Nippani Ravi, Tseng and the Multimodal-Deep-Learning report show the same). The features come
from the model's backbone (`mmdigits_keras.models.feature_extractor`), plus what its
classification layer receives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mmdigits_keras.data.constants import NUM_CLASSES
from mmdigits_keras.models import feature_extractor
from mmdigits_keras.training import load_trained_model
from mmdigits_keras.utils.files import atomic_write
from mmdigits_keras.utils.plotting import save_figure, subplots


def embeddings(run, dataset, out, *, max_rows=1000, seed=0):
    """PCA(50) -> t-SNE(2) scatter by label and by k-means(10) cluster, with NMI and ARI.

    For each feature the model's backbone gives (``image``, ``audio``) and, for fusion models,
    ``fused``: what the classification layer receives (`feature_extractor`).

    Args:
        run: A run directory (written by mmdigits_keras 0.2 or later: its model has a backbone).
        dataset: Labelled `MultimodalDataset` rows to embed.
        out: Folder for the PNGs and the CSV.
        max_rows: Rows sampled (seeded) for t-SNE.
        seed: Seed of the sample, t-SNE and k-means.

    Returns:
        DataFrame with ``embedding``, ``layer`` (where the feature comes from), ``dims``,
        ``nmi``, ``ari`` (k-means against labels), and writes ``embeddings_<name>.png`` and
        ``embeddings.csv`` under `out`.

    Raises:
        ValueError: the run's model has no backbone (0.1.0 run directory: retrain it).
    """
    model = load_trained_model(run)
    rows = np.random.default_rng(seed).permutation(len(dataset))[:max_rows]
    part = dataset.subset(np.sort(rows))
    features = feature_extractor(model).predict(part.inputs(), batch_size=512, verbose=0)
    records = []
    for key in features:
        layer = "classifier input" if key == "fused" else f"backbone {key}"
        values = np.asarray(features[key], dtype=np.float64)
        reduced = PCA(n_components=min(50, values.shape[1], len(values))).fit_transform(values)
        perplexity = float(min(30, max(5, (len(values) - 1) // 4)))
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
        clusters = KMeans(n_clusters=NUM_CLASSES, n_init=10, random_state=seed).fit_predict(reduced)
        nmi = normalized_mutual_info_score(part.labels, clusters)
        ari = adjusted_rand_score(part.labels, clusters)
        records.append({"embedding": key, "layer": layer, "dims": values.shape[1], "nmi": nmi, "ari": ari})
        fig, axes = subplots(1, 2, figsize=(10, 4.5))
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


