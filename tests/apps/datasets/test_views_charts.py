"""The profile charts and number formats of the version page (apps/datasets/templatetags/datasets_tags.py)."""

import re

from apps.datasets.templatetags.datasets_tags import histogram_chart, number, percent, top_values_chart


def test_histogram_draws_one_bar_per_bin_scaled_to_the_tallest_with_tooltips():
    svg = str(histogram_chart({"name": "age", "histogram": {"edges": [0, 10, 20, 30], "counts": [5, 10, 0]}}))
    heights = re.findall(r'<rect class="bar" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)">', svg)
    assert heights == ["50.00", "100.00", "0.00"]  # the plot is 100 units high
    assert re.findall(r"<title>(.*?)</title>", svg) == ["0 to 10: 5", "10 to 20: 10", "20 to 30: 0"]
    assert svg.startswith('<svg class="chart histogram" role="img" aria-label="Histogram of age: 3 bins from 0 to 30;')
    assert "the tallest bin, 10 to 20, holds 10 of 15 values." in svg


def test_histogram_escapes_column_names_and_skips_malformed_input():
    svg = str(histogram_chart({"name": "<b>", "histogram": {"edges": [0, 1], "counts": [1]}}))
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert str(histogram_chart({"name": "x", "histogram": {"edges": [0, 1], "counts": [1, 2]}})) == ""
    assert str(histogram_chart({"name": "x"})) == ""


def test_top_values_chart_labels_each_value_and_shortens_long_ones():
    values = [
        {"value": "basic", "count": 8},
        {"value": "a-very-long-plan-name", "count": 2},
        {"value": None, "count": 1},
    ]
    svg = str(top_values_chart({"name": "plan", "top_values": values}))
    assert re.findall(r'<text class="label" x="0" y="\d+">(.*?)</text>', svg) == [
        "basic",
        "a-very-long-pla…",
        "(missing)",
    ]
    assert re.findall(r"<title>(.*?)</title>", svg) == ["basic: 8", "a-very-long-plan-name: 2", "(missing): 1"]
    assert 'aria-label="Most frequent values of plan: 3 shown; the most frequent, basic, occurs 8 times."' in svg
    assert str(top_values_chart({"name": "plan", "top_values": []})) == ""


def test_numbers_and_shares_are_formatted_for_people():
    assert [number(v) for v in (None, 1234567, 2.0, 0.123456, 12345.678, True, "x")] == [
        "—",
        "1,234,567",
        "2",
        "0.1235",
        "12,345.68",
        "true",
        "x",
    ]
    assert [number(v) for v in ("2024-06-01T00:00:00", "2024-06-01T13:45:10.5+00:00", "2024-06-01")] == [
        "2024-06-01",
        "2024-06-01 13:45:10",
        "2024-06-01",
    ]
    assert [percent(v) for v in (None, 0, 0.25, 0.1234, 1)] == ["—", "0 %", "25 %", "12.3 %", "100 %"]
