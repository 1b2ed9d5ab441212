"""`mmdigits report`: one Markdown report over several runs, with every figure beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmdigits_keras.evaluation.classification import compare, evaluate
from mmdigits_keras.evaluation.embeddings import embeddings
from mmdigits_keras.evaluation.robustness import robustness
from mmdigits_keras.models import model_info
from mmdigits_keras.training.rundir import read_run_config, training_curves
from mmdigits_keras.utils.files import atomic_write, removed_on_failure


def _markdown_table(frame, floatfmt=".4f"):
    return frame.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def write_report(runs, data, out, *, split="validation", max_embedding_rows=1000):
    """Evaluates `runs` on the same rows and writes ``out/report.md`` with tables and figures.

    Sections: metrics table, per-run confusion matrices and training curves, error overlap
    (counts and a Venn diagram for 2-3 runs), a gallery of digits the image-only run gets
    wrong and a fused run gets right, embeddings (PCA -> t-SNE, k-means NMI/ARI) and
    robustness. Links are relative, so the folder reads well on GitHub.

    Args:
        runs: Run directories (2-3 give a Venn diagram; any number works).
        data: The data folder the runs were trained on.
        out: Report folder.
        split: ``validation`` (each run's own validation rows; runs trained with the same seed
            and fraction share them) or ``test`` (needs test labels).
        max_embedding_rows: Rows sampled for t-SNE.

    Returns:
        The path of ``report.md``.

    Raises:
        ValueError: no runs, duplicate run names, or evaluation errors (see `evaluate`).
    """
    runs = [Path(r) for r in runs]
    names = [r.name for r in runs]
    if not runs:
        raise ValueError("give at least one run directory")
    if len(set(names)) != len(names):
        raise ValueError(f"run folder names must differ to label them in the report: {names}")
    with removed_on_failure(out):  # a new report folder appears whole or not at all
        Path(out).mkdir(parents=True, exist_ok=True)
        return _write_report(runs, names, data, Path(out), split=split, max_embedding_rows=max_embedding_rows)


def _write_report(runs, names, data, out, *, split, max_embedding_rows):
    models = {r.name: read_run_config(r)["model"] for r in runs}
    modalities = {name: model_info(model).modalities for name, model in models.items()}
    results = {r.name: evaluate(r, data, split=split) for r in runs}
    same_rows = len({tuple(res["dataset"].ids.tolist()) for res in results.values()}) == 1
    image_only = next((n for n, m in modalities.items() if m == ("image",)), None)
    fused = next((n for n, m in modalities.items() if len(m) == 2), None)
    lines = ["# Evaluation report\n", f"Data: `{data}`, split: **{split}** "
             f"({next(iter(results.values()))['metrics']['rows']} rows).\n"]
    table = pd.DataFrame([{"run": n, "model": models[n], **results[n]["metrics"]} for n in names])
    lines += ["## Accuracy and macro-F1\n", _markdown_table(table)]
    lines.append("## Per run\n")
    for run in runs:
        name = run.name
        folder = out / name
        folder.mkdir(exist_ok=True)
        history = pd.read_csv(run / "history.csv")
        training_curves(history, folder / "curves.png", title=name)
        confusion = results[name]["dir"] / "confusion.png"
        atomic_write(folder / "confusion.png", lambda tmp, src=confusion: Path(tmp).write_bytes(src.read_bytes()))
        per_class = pd.read_csv(results[name]["dir"] / "per_class.csv")
        lines += [f"### {name} (`{models[name]}`)\n", f"![confusion matrix]({name}/confusion.png) "
                  f"![training curves]({name}/curves.png)\n", _markdown_table(per_class, ".3f")]
    if same_rows and len(runs) >= 2:
        written = compare(results, out, image_only=image_only, fused=fused)
        overlap = pd.read_csv(written["overlap_csv"])
        lines += ["## Which rows each model gets wrong\n", _markdown_table(overlap)]
        if "venn" in written:
            lines.append("![error overlap](venn.png)\n")
        if "gallery" in written:
            lines += [f"Digits `{image_only}` gets wrong and `{fused}` gets right (top: image; bottom: the "
                      f"speech features as a heat map, frames left to right):\n", "![gallery](gallery.png)\n"]
    elif len(runs) >= 2:
        lines.append("The runs were judged on different rows (different split seeds), so their errors "
                     "are not compared row by row.\n")
    lines.append("## Embeddings (PCA(50) -> t-SNE(2); k-means with k = 10)\n")
    for run in runs:
        table = embeddings(run, results[run.name]["dataset"], out / run.name, max_rows=max_embedding_rows)
        lines += [f"### {run.name}\n", _markdown_table(table)]
        lines += [f"![{key}]({run.name}/embeddings_{key}.png)\n" for key in table["embedding"]]
    dataset = next(iter(results.values()))["dataset"]
    robustness({r.name: r for r in runs}, dataset, out)
    lines += ["## Robustness\n", "Gaussian noise on the pixels (in [0, 1]) and on the speech features (in "
              "units of each feature's standard deviation), and each modality missing (zeros). Numbers: "
              "[robustness.csv](robustness.csv).\n", "![robustness](robustness.png)\n"]
    return atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text("\n".join(lines)))
