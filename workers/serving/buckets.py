"""The latency histogram's bucket bounds (seconds), shared by the server that writes /metrics and the portal that
reads it (workers.serving.scrape): a module of its own so the reader imports nothing else of the server."""

# Fine-grained under 10 ms, where a single-row prediction should land.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
