"""Data and prediction drift of a deployed model version, computed with Evidently (0.7.x).

- `reference.build_reference`: what is computed once per model version (a seeded sample of its training rows, the
  model's predictions on them, per-column decisions and statistics), stored as one Parquet file.
- `check.drift_check`: one check of a window of logged predictions against that reference, with Evidently's
  DataDriftPreset; `check.drift_html`: Evidently's own HTML report, self-contained.
- `frames.frame_from_predictions`: logged prediction records as a typed frame.
- `sampling.reservoir_sample`: a bounded, uniform sample of a stream of any length.

Evidently and the network. Nothing here needs it, and workers may have none:
- Usage telemetry: Evidently 0.7 sends events only from its UI service and collector (never from `import evidently`
  or a Report run); both honour `DO_NOT_TRACK`, and the legacy setting reads `EVIDENTLY_DISABLE_TELEMETRY=1`. This
  package sets both (unless the environment already has them) before anything imports Evidently, so a worker that
  also starts those components stays quiet. tests/workers/ml/drift/test_check.py runs an import, a check and an HTML
  report with every socket connection refused and asserts none was attempted.
- The HTML report: `Snapshot.get_html_str(as_iframe=False)` inlines Evidently's JavaScript bundle (~3.5 MB) and its
  icon font (a data: URL), with no script or stylesheet loaded from elsewhere; the bundle's only CDN default is
  Plotly's topojson URL, used by map charts, which a drift report never draws.
"""

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
