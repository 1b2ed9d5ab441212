"""What a search leaves for people: the leaderboard (one row per trial) and a plot of the scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmdigits_keras.utils.defaults import OBJECTIVES
from mmdigits_keras.utils.files import read_json
from mmdigits_keras.utils.plotting import save_figure, subplots

TRIAL_FILE = "mmdigits_trial.json"


def leaderboard(tuner, objective):
    """All trials of a keras-tuner tuner as a `pandas.DataFrame`, one row per trial.

    Columns: ``trial_id``, every hyperparameter of the space (empty where inactive),
    ``score`` (the objective), ``seconds``, ``epochs``, ``status`` and ``tuner_id`` (which
    process ran it; these three from the trial's ``mmdigits_trial.json`` when its folder is
    visible here); sorted by trial id.
    """
    oracle = tuner.oracle
    names = [hp.name for hp in oracle.get_space().space]
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        record_path = Path(tuner.get_trial_dir(trial_id)) / TRIAL_FILE
        record = read_json(record_path) if record_path.is_file() else {}
        score = trial.score
        if score is None and trial.metrics.exists(objective):
            score = trial.metrics.get_best_value(objective)
        rows.append({"trial_id": trial_id, **{name: trial.hyperparameters.values.get(name) for name in names},
                     "score": score, "seconds": record.get("seconds"), "epochs": record.get("epochs"),
                     "status": trial.status, "tuner_id": record.get("tuner_id")})
    return pd.DataFrame(rows)


def plot_scores(board, path, *, objective):
    """Writes a PNG of the objective per trial (completed trials; best marked)."""
    done = board[board["status"] == "COMPLETED"].dropna(subset=["score"])
    fig, ax = subplots(figsize=(7, 4))
    if len(done):
        colours = done["depth"].astype(float) if "depth" in done else None
        # Coloured by depth where the space has one (Nippani Ravi's Models); a colour map without
        # values makes matplotlib warn on every search of the default model.
        colouring = {} if colours is None else {"c": colours, "cmap": "viridis"}
        points = ax.scatter(done["trial_id"].astype(int), done["score"], s=40, **colouring)
        if colours is not None:
            fig.colorbar(points, ax=ax, label="depth (Nippani Ravi's Model)")
        best = done["score"].idxmax() if OBJECTIVES.get(objective) == "max" else done["score"].idxmin()
        ax.scatter([int(done.loc[best, "trial_id"])], [done.loc[best, "score"]], marker="*", s=250,
                   facecolors="none", edgecolors="red", label=f"best: trial {done.loc[best, 'trial_id']}")
        ax.legend(loc="best")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per trial ({len(done)} completed of {len(board)})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
