"""The evaluation layer: metrics files and plots per run, comparisons, embeddings, robustness,
the Markdown report, and Xia et al.'s retrieval protocol with queries."""

from mmdigits_keras.evaluation.classification import (
    classification_summary,
    compare,
    error_overlap,
    evaluate,
    evaluation_rows,
)
from mmdigits_keras.evaluation.embeddings import embeddings
from mmdigits_keras.evaluation.report import write_report
from mmdigits_keras.evaluation.retrieval import evaluate_retrieval, query
from mmdigits_keras.evaluation.robustness import robustness

__all__ = ["classification_summary", "compare", "embeddings", "error_overlap", "evaluate", "evaluate_retrieval",
           "evaluation_rows", "query", "robustness", "write_report"]
