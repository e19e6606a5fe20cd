"""The server-drawn evaluation charts: they say in words what they show, escape what they print, and draw nothing
(rather than fail) on data that does not fit."""

import math

from apps.experiments import charts


def test_line_chart_draws_each_series_with_a_summary():
    svg = charts.line_chart(
        [{"name": "validation", "x": [0, 0.5, 1], "y": [0, 0.8, 1]}, {"name": "test", "x": [0, 1], "y": [0, 1]}],
        title="ROC curve",
        x_label="False positive rate",
        y_label="True positive rate",
        x_range=(0, 1),
        y_range=(0, 1),
        diagonal=True,
    )
    assert svg.count("<polyline") == 2
    assert 'class="reference"' in svg
    assert 'aria-label="ROC curve: validation, test; False positive rate against True positive rate."' in svg
    # x=0.5 maps to the middle of the plot area, y=0.8 to 80% of its height from the bottom.
    middle_x = charts.LEFT + (charts.WIDTH - charts.LEFT - charts.RIGHT) / 2
    plot_height = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert f"{middle_x:.1f},{charts.TOP + plot_height * 0.2:.1f}" in svg


def test_charts_draw_nothing_for_data_that_does_not_fit():
    assert charts.line_chart([{"name": "a", "x": [0, 1], "y": [0]}], title="t", x_label="x", y_label="y") == ""
    assert (
        charts.line_chart([{"name": "a", "x": [0, math.nan], "y": [0, 1]}], title="t", x_label="x", y_label="y") == ""
    )
    assert charts.bar_chart([], title="t") == ""
    assert charts.heatmap(["a", "b"], [[1, 2]], title="t") == ""
    assert charts.scatter_chart([1, 2], [1], title="t", x_label="x", y_label="y") == ""
    assert charts.beeswarm([{"feature": "f", "shap": []}], title="t") == ""


def test_bar_chart_escapes_labels_and_names_the_largest():
    svg = charts.bar_chart([("<script>", 0.5), ("age", -0.9)], title="Importance")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "the largest is age at -0.9" in svg


def test_heatmap_counts_the_diagonal():
    svg = charts.heatmap(["no", "yes"], [[50, 5], [10, 35]], title="Confusion matrix")
    assert "85 of 100 rows on the diagonal" in svg
    assert svg.count('class="cell"') == 4
    assert "actual yes, predicted no: 10" in svg


def test_beeswarm_colours_by_value_rank_and_greys_unknown_values():
    svg = charts.beeswarm(
        [{"feature": "tenure", "shap": [0.2, -0.1], "color": [1.0, None]}, {"feature": "plan", "shap": [0.05]}],
        title="SHAP summary",
    )
    assert svg.count('class="swarm"') == 3
    assert "rgb(240,50,40)" in svg  # the highest value is red
    assert 'fill="#888"' in svg  # unknown value rank
    assert "tenure first" in svg
