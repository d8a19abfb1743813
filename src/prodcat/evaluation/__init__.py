"""Evaluate a categorizer honestly: metrics on class names, a report with figures.

    >>> from prodcat.evaluation import compute_metrics, write_report
    >>> metrics = compute_metrics(space, true_labels, proba)      # doctest: +SKIP
    >>> write_report(metrics, "runs/eval")                       # doctest: +SKIP
"""

from prodcat.evaluation.compare import versus_best_part
from prodcat.evaluation.metrics import compute_metrics, precision_coverage
from prodcat.evaluation.report import write_report

__all__ = ["compute_metrics", "precision_coverage", "versus_best_part", "write_report"]
