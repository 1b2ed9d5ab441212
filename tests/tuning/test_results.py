import warnings

import pandas as pd
import pytest

from mmdigits_keras.tuning.results import plot_scores


@pytest.mark.parametrize("space", [{}, {"depth": [1, 2, 3]}])
def test_the_scores_plot_draws_without_warnings_with_or_without_a_depth(tmp_path, space):
    board = pd.DataFrame({"trial_id": ["00", "01", "02"], "score": [0.91, 0.95, 0.93],
                          "status": ["COMPLETED"] * 3, **space})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_scores(board, tmp_path / "scores.png", objective="val_accuracy")
    assert path.stat().st_size > 1000
