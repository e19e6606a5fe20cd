"""How the model treats the groups of each sensitive column, on the test set (fairlearn's MetricFrame).

Binary: per group count, selection rate (share predicted positive), TPR and FPR; demographic parity difference
(the largest gap in selection rate, as fairlearn's demographic_parity_difference) and equalized odds difference (the
larger of the largest TPR gap and the largest FPR gap). A group with no positive rows has no TPR (and one with no
negatives no FPR): fairlearn would count it as 0, which invents a gap, so such a rate is None and left out of the
equalized odds difference.
Multiclass: per group count and accuracy, and the accuracy gap. Regression: per group count, mean absolute error
and mean prediction, and the MAE gap.

Groups: numeric columns with more than MAX_GROUPS distinct values are binned into QUANTILE_BINS quantile bins; any
column with more than MAX_GROUPS groups keeps the MAX_GROUPS - 1 largest and pools the rest as "(other)"; missing
values form a "(missing)" group. Each column says how it was grouped.
"""

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error

MAX_GROUPS = 20
QUANTILE_BINS = 5
MISSING_GROUP = "(missing)"
OTHER_GROUP = "(other)"
COUNTS = ("count", "positives")


def fairness_report(*, problem_type: str, y_true, y_pred, sensitive: pd.DataFrame | None, classes=None) -> dict:
    if problem_type == "clustering":
        return {"computed": False, "reason": "Clustering has no right answers to compare groups on.", "columns": []}
    if sensitive is None or sensitive.shape[1] == 0:
        return {"computed": False, "reason": "No sensitive columns were chosen.", "columns": []}
    if len(sensitive) != len(y_true):
        raise ValueError(f"sensitive_test has {len(sensitive)} rows but the test set has {len(y_true)}.")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    columns = []
    for name in sensitive.columns:
        groups, grouping = sensitive_groups(sensitive[name])
        report = _column_report(problem_type, y_true, y_pred, groups, classes)
        report["groups"] = _in_display_order(report["groups"], grouping["bins"])
        columns.append({"column": name, "grouping": grouping, **report})
    return {"computed": True, "columns": columns}


def sensitive_groups(column: pd.Series) -> tuple[pd.Series, dict]:
    """Group labels (strings) for a sensitive column, and how they were made."""
    grouping = {"binned": None, "bins": None, "pooled_groups": 0}
    values = column.reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > MAX_GROUPS:
        values = pd.qcut(values, q=QUANTILE_BINS, duplicates="drop")
        grouping["binned"] = f"{len(values.cat.categories)} quantile bins"
        grouping["bins"] = [str(interval) for interval in values.cat.categories]
    labels = values.astype(object).where(values.notna(), MISSING_GROUP).astype(str)
    sizes = labels.value_counts()
    if len(sizes) > MAX_GROUPS:
        kept = set(sizes.index[: MAX_GROUPS - 1])
        grouping["pooled_groups"] = len(sizes) - len(kept)
        labels = labels.where(labels.isin(kept), OTHER_GROUP)
    return labels.rename("group"), grouping


def _column_report(problem_type, y_true, y_pred, groups: pd.Series, classes) -> dict:
    if problem_type == "binary":
        return _binary_report(y_true == classes[1], y_pred == classes[1], groups)
    if problem_type == "multiclass":
        frame = MetricFrame(
            metrics={"accuracy": accuracy_score}, y_true=y_true, y_pred=y_pred, sensitive_features=groups
        )
        return {
            "groups": _group_rows(_counts(groups).join(frame.by_group)),
            "accuracy_difference": float(frame.difference()["accuracy"]),
        }
    frame = MetricFrame(
        metrics={"mean_absolute_error": mean_absolute_error, "mean_prediction": _mean_prediction},
        y_true=y_true.astype(float),
        y_pred=y_pred.astype(float),
        sensitive_features=groups,
    )
    return {
        "groups": _group_rows(_counts(groups).join(frame.by_group)),
        "mean_absolute_error_difference": float(frame.difference()["mean_absolute_error"]),
    }


def _counts(groups: pd.Series) -> pd.DataFrame:
    # fairlearn evaluates every metric row by row in Python; counting is left to pandas.
    return groups.value_counts().rename("count").to_frame()


def _binary_report(is_positive: np.ndarray, predicted_positive: np.ndarray, groups: pd.Series) -> dict:
    y_true, y_pred = is_positive.astype(int), predicted_positive.astype(int)
    # The demographic parity difference is this frame's selection-rate gap: fairlearn's demographic_parity_difference
    # computes the same with a second frame, and frames are slow (every metric runs row by row in Python).
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    counts = _counts(groups).join(pd.Series(y_true, name="positives").groupby(groups).sum())
    by_group = counts.join(frame.by_group)
    by_group.loc[by_group["positives"] == 0, "true_positive_rate"] = np.nan
    by_group.loc[by_group["positives"] == by_group["count"], "false_positive_rate"] = np.nan
    gaps = [_spread(by_group["true_positive_rate"]), _spread(by_group["false_positive_rate"])]
    defined_gaps = [gap for gap in gaps if gap is not None]
    return {
        "groups": _group_rows(by_group),
        "demographic_parity_difference": float(frame.difference()["selection_rate"]),
        "equalized_odds_difference": max(defined_gaps) if defined_gaps else None,
    }


def _mean_prediction(y_true, y_pred) -> float:
    return float(np.mean(y_pred))


def _spread(rates: pd.Series) -> float | None:
    """Largest minus smallest rate over the groups where it is defined (None with fewer than two)."""
    defined = rates.dropna()
    return float(defined.max() - defined.min()) if len(defined) >= 2 else None


def _group_rows(by_group: pd.DataFrame) -> list[dict]:
    return [
        {"group": group, **{name: _number(name, value) for name, value in row.items()}}
        for group, row in by_group.iterrows()
    ]


def _in_display_order(groups: list[dict], bins: list[str] | None) -> list[dict]:
    """Quantile bins in numeric order (missing values last), other groups largest first."""
    if bins:
        rank = {label: position for position, label in enumerate(bins)}
        return sorted(groups, key=lambda group: rank.get(group["group"], len(rank)))
    return sorted(groups, key=lambda group: -group["count"])


def _number(name: str, value) -> int | float | None:
    if pd.isna(value):
        return None
    return int(value) if name in COUNTS else float(value)
