"""Model cards: the sections generated from a version's record, and the sections people write.

The generated part is built once, when the version is registered, from the version's own record (its lineage and
metrics snapshot, which already carry the problem definition as it was), so the card describes exactly the model that
was registered even after the project's definition changes. People write what a generator cannot know
(WRITTEN_SECTIONS); the required ones must be filled before a promotion to production (the model card gate).
"""

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from apps.projects.choices import LOWER_IS_BETTER, Metric, ProblemType

# (key, label, required before production)
WRITTEN_SECTIONS: list[tuple[str, str, bool]] = [
    ("intended_use_notes", "Intended use: who uses it, for which decisions, and what it must not be used for", True),
    ("limitations", "Known limitations: where the model is weak or was not tested", True),
    ("ethical_considerations", "Ethical considerations: who could be harmed, and how it is mitigated", True),
    ("monitoring", "Monitoring and maintenance: what is watched in production, and when it is retrained", False),
    ("caveats", "Caveats and recommendations", False),
]
WRITTEN_KEYS = [key for key, _, _ in WRITTEN_SECTIONS]
REQUIRED_SECTIONS = [key for key, _, required in WRITTEN_SECTIONS if required]
WRITTEN_LABELS = {key: label for key, label, _ in WRITTEN_SECTIONS}
MAX_WRITTEN_CHARS = 20_000
TOP_FEATURES = 10
# A robustness check that changes more predictions than this is worth a limitation hint.
ROBUSTNESS_HINT_SHARE = 0.05
SMALL_TEST_SET_ROWS = 200


def missing_required_sections(written: dict) -> list[str]:
    """The labels' keys of the required written sections that are empty."""
    return [key for key in REQUIRED_SECTIONS if not str((written or {}).get(key, "")).strip()]


def _label(metric: str) -> str:
    return Metric(metric).label if metric in Metric.values else metric


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


# --- Generated sections ---------------------------------------------------------------------------------------------
def _intended_use(lineage: dict) -> dict[str, Any]:
    definition = lineage.get("definition") or {}
    metric, threshold = definition.get("primary_metric", ""), definition.get("primary_threshold")
    items = [f"Project: {(lineage.get('project') or {}).get('name', '')}"]
    problem_type = definition.get("problem_type", "")
    if problem_type in ProblemType.values:
        items.append(f"Problem type: {ProblemType(problem_type).label}")
    if metric and threshold is not None:
        items.append(f"Success criterion: {_label(metric)} {'≤' if metric in LOWER_IS_BETTER else '≥'} {threshold:g}")
    if definition.get("scope"):
        items.append(f"Scope: {definition['scope']}")
    if definition.get("stakeholders"):
        items.append("Stakeholders: " + "; ".join(line for line in definition["stakeholders"].splitlines() if line))
    return {"title": "Intended use", "text": definition.get("business_problem", ""), "items": items}


def _data(lineage: dict) -> dict[str, Any]:
    dataset, data = lineage.get("dataset") or {}, lineage.get("data") or {}
    items = [
        f"Dataset: {dataset.get('name', '')}, version {dataset.get('version_number', '')}",
        f"SHA-256: {dataset.get('sha256', '')}",
        f"Rows: {dataset.get('rows', '—')}, columns: {dataset.get('columns', '—')}",
        f"Validation: {dataset.get('validation_status', '—')}"
        + (f" (override: {dataset['override_reason']})" if dataset.get("override_reason") else ""),
        f"Target: {data.get('target') or '—'}",
        "Features: " + (", ".join(lineage.get("features") or []) or "—"),
        "Personal data columns (never used as features): " + (", ".join(data.get("personal_columns") or []) or "none"),
        "Sensitive columns (protected attributes): " + (", ".join(data.get("sensitive_columns") or []) or "none"),
    ]
    return {"title": "Data", "text": "", "items": items}


def _training(lineage: dict) -> dict[str, Any]:
    environment = lineage.get("environment") or {}
    libraries = ", ".join(f"{name} {version}" for name, version in sorted(environment.items()) if name != "platform")
    items = [
        f"Algorithm: {lineage.get('algorithm', '')}",
        "Hyperparameters: " + (", ".join(f"{k}={v}" for k, v in (lineage.get("params") or {}).items()) or "defaults"),
        f"Seed: {lineage.get('seed')}",
        f"Trained by: {lineage.get('trained_by', '')}",
        f"Run {(lineage.get('run') or {}).get('number', '')} of experiment "
        f"{(lineage.get('experiment') or {}).get('number', '')}",
        f"Libraries: {libraries or '—'}",
    ]
    return {"title": "Training", "text": "", "items": items}


def _metrics(metrics: dict) -> dict[str, Any]:
    items = []
    for section in ("validation", "test"):
        values = metrics.get(section) or {}
        shown = [f"{_label(name)} {_format(value)}" for name, value in values.items() if not isinstance(value, list)]
        if shown:
            items.append(f"{section.capitalize()}: " + ", ".join(shown))
    cv = metrics.get("cv") or {}
    if cv:
        items.append("Cross-validation: " + ", ".join(f"{name} {_format(value)}" for name, value in cv.items()))
    project = metrics.get("project") or {}
    business = project.get("business") or {}
    if business.get("computed"):
        items.append(
            f"Business value on the test rows: {_format(business.get('total'))} {business.get('currency', '')} "
            f"over {business.get('decisions')} decisions"
        )
    single = ((metrics.get("operational") or {}).get("latency_single_row_ms")) or {}
    if single:
        items.append(f"Latency (one row): p50 {_format(single.get('p50'))} ms, p99 {_format(single.get('p99'))} ms")
    return {"title": "Metrics", "text": "", "items": items}


def _fairness(metrics: dict) -> dict[str, Any]:
    fairness = metrics.get("fairness") or {}
    if not fairness.get("computed") or not fairness.get("columns"):
        return {"title": "Fairness", "text": "No sensitive column was checked.", "items": []}
    items = [
        f"{column.get('column')}: demographic parity difference {_format(column.get('demographic_parity_difference'))}"
        f", equalized odds difference {_format(column.get('equalized_odds_difference'))} "
        f"({len(column.get('groups') or [])} groups)"
        for column in fairness["columns"]
    ]
    return {"title": "Fairness", "text": "", "items": items}


def _explanations(metrics: dict) -> dict[str, Any]:
    explanations = metrics.get("explanations") or {}
    importance = explanations.get("global_importance") or []
    if not importance:
        reason = explanations.get("reason") or "No explanations were computed."
        return {"title": "Explanations", "text": reason, "items": []}
    items = [f"{entry['feature']}: {_format(entry['mean_abs_shap'])}" for entry in importance[:TOP_FEATURES]]
    text = (
        f"Top features by mean |SHAP| ({explanations.get('explainer', '')} explainer, {explanations.get('rows')} rows)"
    )
    return {"title": "Explanations", "text": text + ":", "items": items}


def _limitation_hints(metrics: dict, lineage: dict) -> list[str]:
    """What the record itself says the model is weak at."""
    hints = []
    dataset = lineage.get("dataset") or {}
    if dataset.get("override_reason"):
        hints.append(f"Trained on data that failed validation, used with an override: {dataset['override_reason']}")
    project = metrics.get("project") or {}
    if project.get("passed") is False:
        hints.append("The test score misses the project's success criterion.")
    counts = ((project.get("business") or {}).get("decisions")) or 0
    if counts and counts < SMALL_TEST_SET_ROWS:
        hints.append(f"Tested on {counts} held-out rows only: the test metrics are uncertain.")
    robustness = metrics.get("robustness") or {}
    for entry in robustness.get("noise") or []:
        if (entry.get("changed_share") or 0) > ROBUSTNESS_HINT_SHARE:
            hints.append(f"{entry['changed_share']:.0%} of predictions change under {entry['level']:g} noise.")
    for entry in robustness.get("unseen_categories") or []:
        if (entry.get("changed_share") or 0) > ROBUSTNESS_HINT_SHARE:
            hints.append(f"{entry['changed_share']:.0%} of predictions change with an unseen {entry['feature']}.")
    limit = (lineage.get("definition") or {}).get("fairness_max_difference")
    for column in (metrics.get("fairness") or {}).get("columns") or []:
        worst = max(
            (column.get(key) or 0 for key in ("demographic_parity_difference", "equalized_odds_difference")), default=0
        )
        if limit is not None and worst > limit:
            hints.append(f"Treats groups of {column.get('column')} differently (difference {worst:.3g} > {limit:g}).")
    return hints


def _regulatory(lineage: dict) -> dict[str, Any]:
    definition = lineage.get("definition") or {}
    flags = [
        label
        for key, label in (
            ("personal_data", "Personal data"),
            ("gdpr", "GDPR applies"),
            ("hipaa", "HIPAA applies"),
            ("high_risk", "High-risk use (e.g. EU AI Act)"),
        )
        if definition.get(key)
    ]
    return {"title": "Regulatory flags", "text": "" if flags else "None declared.", "items": flags}


def generate_card(*, metrics: dict, lineage: dict) -> dict[str, Any]:
    """The generated sections of a version's card, from its metrics snapshot and lineage."""
    definition = lineage.get("definition") or {}
    return {
        "intended_use": _intended_use(lineage),
        "data": _data(lineage),
        "training": _training(lineage),
        "metrics": _metrics(metrics),
        "fairness": _fairness(metrics),
        "explanations": _explanations(metrics),
        "limitation_hints": _limitation_hints(metrics, lineage),
        "ethical_considerations": definition.get("ethical_considerations", ""),
        "regulatory": _regulatory(lineage),
    }


# --- Reading a card -------------------------------------------------------------------------------------------------
def _written_section(key: str, written: dict, *, title: str = "", items=None, lead: str = "") -> dict[str, Any]:
    text = str(written.get(key, "") or "").strip()
    required = key in REQUIRED_SECTIONS
    return {
        "key": key,
        "title": title or WRITTEN_LABELS[key],
        "text": "\n\n".join(part for part in (lead, text) if part),
        "items": list(items or []),
        "required": required,
        "missing": not text,
        "written": True,
    }


def _generated_section(key: str, content: dict) -> dict[str, Any]:
    return {
        "key": key,
        "title": content.get("title", key),
        "text": content.get("text", ""),
        "items": list(content.get("items") or []),
        "required": False,
        "missing": False,
        "written": False,
    }


def card_sections(version) -> list[dict[str, Any]]:
    """The card in reading order: [{key, title, text, items, required, missing, written}]. Generated sections are
    read-only; written ones say whether they are `missing` (and `required` before production)."""
    card = getattr(version, "card", None)
    generated = card.generated if card else {}
    written = card.written if card else {}
    sections = [_generated_section("intended_use", generated.get("intended_use") or {})]
    sections.append(_written_section("intended_use_notes", written, title="Intended and out-of-scope uses"))
    for key in ("data", "training", "metrics", "fairness", "explanations"):
        sections.append(_generated_section(key, generated.get(key) or {}))
    sections.append(
        _written_section("limitations", written, title="Limitations", items=generated.get("limitation_hints"))
    )
    definition_text = generated.get("ethical_considerations", "")
    sections.append(
        _written_section(
            "ethical_considerations",
            written,
            title="Ethical considerations",
            lead=f"From the problem definition: {definition_text}" if definition_text else "",
        )
    )
    sections.append(_generated_section("regulatory", generated.get("regulatory") or {}))
    sections.append(_written_section("monitoring", written, title="Monitoring and maintenance"))
    sections.append(_written_section("caveats", written, title="Caveats and recommendations"))
    return sections


def model_card_html(version) -> str:
    """The card as one standalone HTML document with a print layout (print it to PDF), for the download."""
    model = version.registered_model
    context = {
        "version": version,
        "model": model,
        "project_name": ((version.lineage or {}).get("project") or {}).get("name", ""),
        "sections": card_sections(version),
        "generated_at": timezone.now(),
    }
    return render_to_string("registry/model_card_document.html", context)
