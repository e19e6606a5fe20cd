"""What the run and comparison pages show, shaped from the evaluation a worker stored with each run
(workers/ml/evaluation/evaluate.py documents its sections). Pure functions of the stored JSON; no queries."""

from typing import Any

from apps.experiments import charts
from workers.ml.training.spec import LOWER_IS_BETTER, METRICS  # stdlib only

SUMMARY_FEATURES = 12
IMPORTANCE_BARS = 15
FAIRNESS_COLUMNS = {
    "count": "Rows",
    "positives": "Actual positives",
    "selection_rate": "Selection rate",
    "true_positive_rate": "TPR",
    "false_positive_rate": "FPR",
    "accuracy": "Accuracy",
    "mean_absolute_error": "Mean absolute error",
    "mean_prediction": "Mean prediction",
}
FAIRNESS_SUMMARIES = {
    "demographic_parity_difference": "Demographic parity difference",
    "equalized_odds_difference": "Equalized odds difference",
    "accuracy_difference": "Accuracy difference",
    "mean_absolute_error_difference": "Mean absolute error difference",
}


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _money(value, currency: str) -> str:
    return "—" if value is None else f"{value:,.2f} {currency}"


def run_summary_rows(run) -> dict[str, Any]:
    """Tables of the run page: metrics, project verdict, fairness, robustness, local explanations, operations."""
    evaluation = run.metrics or {}
    primary = run.spec.get("primary_metric")
    validation, test = evaluation.get("validation") or {}, evaluation.get("test") or {}
    names = _metric_order(run.spec.get("problem_type"), [name for name in test if name != "cluster_sizes"])
    return {
        "metrics": [
            {"name": name, "validation": validation.get(name), "test": test.get(name), "primary": name == primary}
            for name in names
        ],
        "cv": run.cv or None,
        "cluster_sizes": [f"{item['cluster']}: {item['size']:,}" for item in test.get("cluster_sizes") or []],
        "project": project_rows(evaluation.get("project")),
        "fairness": fairness_tables(evaluation.get("fairness")),
        "robustness": robustness_rows(evaluation.get("robustness")),
        "local_explanations": local_explanations(evaluation.get("explanations")),
        "operational": operational_rows(evaluation.get("operational")),
    }


def _metric_order(problem_type: str | None, names: list[str]) -> list[str]:
    """The spec's order for the problem type (PostgreSQL's jsonb does not keep key order), then the rest by name."""
    known = [name for name in METRICS.get(problem_type or "", ()) if name in names]
    return known + sorted(name for name in names if name not in known)


def project_rows(project: dict | None) -> list[dict]:
    if not project:
        return [{"label": "Project criteria", "value": "The project has no success criteria to check against."}]
    rows = []
    metric, value, threshold = project.get("primary_metric"), project.get("value"), project.get("threshold")
    if threshold is not None:
        sign = "≤" if metric in LOWER_IS_BETTER else "≥"
        verdict = {True: "meets", False: "misses", None: "cannot be judged"}[project.get("passed")]
        rows.append({"label": "Success threshold", "value": f"{metric} {_number(value)} {verdict} {sign} {threshold}"})
    lift = project.get("lift")
    if lift:
        relative = f" ({lift['relative']:+.1%})" if lift.get("relative") is not None else ""
        rows.append(
            {
                "label": "Lift over the baseline",
                "value": f"{_number(lift.get('difference'))}{relative} against {_number(project.get('baseline'))}",
            }
        )
    business = project.get("business") or {}
    if business.get("computed"):
        currency = business.get("currency", "")
        rows.append(
            {
                "label": "Business value on the test set",
                "value": f"{_money(business.get('total'), currency)} over {business.get('decisions'):,} decisions "
                f"({_money(business.get('per_decision'), currency)} per decision)",
            }
        )
        threshold_info = business.get("threshold")
        if threshold_info:
            rows.append(
                {
                    "label": "Best decision threshold",
                    "value": f"{threshold_info['best']:.3f}: {_money(threshold_info['value_at_best'], currency)} "
                    f"against {_money(threshold_info['value_at_default'], currency)} at "
                    f"{threshold_info['default']}",
                }
            )
    elif business:
        rows.append({"label": "Business value", "value": business.get("reason", "Not computed.")})
    return rows


def fairness_tables(fairness: dict | None) -> list[dict]:
    if not fairness or not fairness.get("computed"):
        return []
    tables = []
    for column in fairness.get("columns") or []:
        groups = column.get("groups") or []
        keys = [key for key in FAIRNESS_COLUMNS if groups and key in groups[0]]
        grouping = column.get("grouping") or {}
        notes = []
        if grouping.get("binned"):
            notes.append(f"Numeric values grouped into {grouping.get('bins') and len(grouping['bins'])} bins.")
        if grouping.get("pooled_groups"):
            notes.append(f"{grouping['pooled_groups']} small groups pooled as “other”.")
        tables.append(
            {
                "column": column.get("column"),
                "note": " ".join(notes),
                "columns": [FAIRNESS_COLUMNS[key] for key in keys],
                "rows": [{"group": group.get("group"), "values": [group.get(key) for key in keys]} for group in groups],
                "summary": [
                    {"label": label, "value": column.get(key)}
                    for key, label in FAIRNESS_SUMMARIES.items()
                    if key in column
                ],
            }
        )
    return tables


def robustness_rows(robustness: dict | None) -> list[dict]:
    if not robustness:
        return []
    rows = []
    for item in robustness.get("noise") or []:
        change = _change_text(item)
        rows.append(
            {"label": f"Gaussian noise at {item.get('level', 0):.0%} of each numeric feature's std", "value": change}
        )
    for item in robustness.get("unseen_categories") or []:
        rows.append({"label": f"Unseen category in {item.get('feature')}", "value": _change_text(item)})
    return rows


def _change_text(item: dict) -> str:
    if "changed_share" in item:
        return f"{item['changed_share']:.1%} of predictions change"
    if item.get("mean_relative_change") is not None:
        return f"predictions move by {item['mean_relative_change']:.2%} on average"
    return f"predictions move by {_number(item.get('mean_absolute_change'))} on average"


def local_explanations(explanations: dict | None) -> list[dict]:
    if not explanations or not explanations.get("computed"):
        return []
    return [
        {
            "prediction": item.get("prediction"),
            "base_value": item.get("base_value"),
            # SHAP explains the model's own output: log-odds for boosted trees and linear classifiers.
            "output": (item.get("output") or "").replace("_", "-"),
            "contributions": [
                {"feature": feature, "value": value} for feature, value in (item.get("contributions") or {}).items()
            ][:SUMMARY_FEATURES],
        }
        for item in explanations.get("local") or []
    ]


def operational_rows(operational: dict | None) -> list[dict]:
    if not operational:
        return []
    single = operational.get("latency_single_row_ms") or {}
    batch = operational.get("latency_batch_ms") or {}
    rows = [
        {"label": "Model size", "value": f"{(operational.get('model_size_bytes') or 0) / 1024:,.1f} KiB"},
        {
            "label": "Single-row latency",
            "value": f"p50 {_number(single.get('p50'), 3)} ms, p99 {_number(single.get('p99'), 3)} ms",
        },
        {
            "label": f"Batch latency ({batch.get('rows', 0):,} rows)",
            "value": f"p50 {_number(batch.get('p50'), 3)} ms, p99 {_number(batch.get('p99'), 3)} ms",
        },
    ]
    budget = operational.get("latency_budget_p99_ms")
    if budget is not None:
        verdict = "within" if operational.get("meets_latency_budget") else "over"
        rows.append({"label": "Latency budget", "value": f"p99 {verdict} the project's {budget} ms"})
    return rows


# --- Charts ---------------------------------------------------------------------------------------------------------


def run_charts(run) -> list[dict]:
    """[{key, title, svg}] for every picture the run's evaluation can draw."""
    evaluation = run.metrics or {}
    curves = evaluation.get("curves") or {}
    drawn = [
        ("roc", "ROC curve", _roc(curves.get("roc"))),
        ("pr", "Precision-recall curve", _pr(curves.get("pr"))),
        ("calibration", "Calibration", _calibration(curves.get("calibration"))),
        ("confusion", "Confusion matrix (test)", _confusion(evaluation.get("confusion_matrix"))),
        ("residuals", "Residuals (test)", _residuals(curves.get("residuals"))),
        ("importance", "Feature importance (mean |SHAP|)", _importance(evaluation.get("explanations"))),
        ("shap_summary", "SHAP summary", _shap_summary(evaluation.get("explanations"))),
        ("tuning", "Tuning history", _tuning(run.trials, run.spec.get("primary_metric", "score"))),
    ]
    for column in (evaluation.get("fairness") or {}).get("columns") or []:
        drawn.append((f"fairness-{column.get('column')}", f"{column.get('column')}: by group", _fairness(column)))
    return [{"key": key, "title": title, "svg": svg} for key, title, svg in drawn if svg]


def _roc(roc):
    if not roc:
        return ""
    return charts.line_chart(
        [{"name": "test", "x": roc.get("fpr"), "y": roc.get("tpr")}],
        title="ROC curve",
        x_label="False positive rate",
        y_label="True positive rate",
        x_range=(0, 1),
        y_range=(0, 1),
        diagonal=True,
    )


def _pr(pr):
    if not pr:
        return ""
    return charts.line_chart(
        [{"name": "test", "x": pr.get("recall"), "y": pr.get("precision")}],
        title="Precision-recall curve",
        x_label="Recall",
        y_label="Precision",
        x_range=(0, 1),
        y_range=(0, 1),
    )


def _calibration(calibration):
    if not calibration:
        return ""
    return charts.line_chart(
        [{"name": "model", "x": calibration.get("mean_predicted"), "y": calibration.get("fraction_positive")}],
        title="Calibration",
        x_label="Mean predicted probability",
        y_label="Fraction of positives",
        x_range=(0, 1),
        y_range=(0, 1),
        diagonal=True,
        markers=True,
    )


def _confusion(confusion):
    if not confusion:
        return ""
    return charts.heatmap(confusion.get("labels") or [], confusion.get("matrix") or [], title="Confusion matrix")


def _residuals(residuals):
    if not residuals:
        return ""
    return charts.scatter_chart(
        residuals.get("predicted"),
        residuals.get("residual"),
        title="Residuals",
        x_label="Predicted",
        y_label="Residual",
    )


def _importance(explanations):
    if not explanations or not explanations.get("computed"):
        return ""
    items = [(item["feature"], item["mean_abs_shap"]) for item in explanations.get("global_importance") or []]
    return charts.bar_chart(items[:IMPORTANCE_BARS], title="Mean absolute SHAP value per feature")


def _shap_summary(explanations):
    if not explanations or not explanations.get("computed"):
        return ""
    return charts.beeswarm(
        [
            {"feature": item["feature"], "shap": item["shap"], "color": _ranks(item.get("values"))}
            for item in explanations.get("summary") or []
        ],
        title="SHAP summary",
    )


def _ranks(values) -> list[float | None]:
    """Each numeric value's rank among the shown ones, 0..1 (the beeswarm's colour); None for text or missing."""
    numbers = sorted(
        {value for value in values or [] if isinstance(value, int | float) and not isinstance(value, bool)}
    )
    if len(numbers) < 2:
        return [None] * len(values or [])
    position = {value: index / (len(numbers) - 1) for index, value in enumerate(numbers)}
    return [position.get(value) if isinstance(value, int | float) else None for value in values]


def _tuning(trials, metric: str):
    scored = [trial for trial in trials or [] if trial.get("score") is not None]
    if len(scored) < 2:
        return ""
    xs = [trial.get("number", index) for index, trial in enumerate(scored)]
    ys = [trial["score"] for trial in scored]
    pick = min if metric in LOWER_IS_BETTER else max
    best, best_so_far = None, []
    for value in ys:
        best = value if best is None else pick(best, value)
        best_so_far.append(best)
    return charts.line_chart(
        [{"name": "trial score", "x": xs, "y": ys}, {"name": "best so far", "x": xs, "y": best_so_far}],
        title="Tuning history",
        x_label="Trial",
        y_label=metric,
        markers=True,
    )


def _fairness(column: dict):
    groups = column.get("groups") or []
    key = next((k for k in ("selection_rate", "accuracy", "mean_absolute_error") if groups and k in groups[0]), None)
    if key is None:
        return ""
    return charts.bar_chart(
        [(str(group.get("group")), group.get(key)) for group in groups],
        title=f"{FAIRNESS_COLUMNS[key]} by {column.get('column')}",
    )
