"""Features fetched from the online store while a request is answered: a deployment that declares a feature view
(workers.serving.config.FeatureLookup) lets clients send entity keys (and any request-time columns) instead of the
features themselves; the server reads the latest values from Redis (workers.ml.features.online, the same keys the
portal's online sync writes) in one round trip per request and fills the columns before validation, so training
and serving use the same definitions. What was fetched is logged with the prediction like any input (the monitor and
a later explanation see exactly what the model saw).

A request that already carries every feature column is left alone; a request missing an entity key gets a 400
naming it; an entity the store does not know gets missing values, which the version's signature then accepts or
refuses by column like any missing input.
"""

import os
from typing import Any

from workers.serving.config import ConfigError, FeatureLookup
from workers.serving.validation import InputError

REDIS_URL_VARIABLE = "FEATURES_ONLINE_REDIS_URL"


class OnlineFeatures:
    def __init__(self, lookup: FeatureLookup, client):
        self.lookup = lookup
        self.client = client

    def enrich(self, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
        missing = [name for name in self.lookup.columns if name not in columns]
        if not missing:
            return columns
        for key in self.lookup.entity_keys:
            if key not in columns:
                raise InputError(
                    key,
                    f"the entity key is required: this endpoint fetches {', '.join(missing)} from the feature "
                    f"view {self.lookup.view!r} by it.",
                )
        from workers.ml.features.online import read_online

        rows = len(columns[self.lookup.entity_keys[0]])
        entities = [{key: columns[key][row] for key in self.lookup.entity_keys} for row in range(rows)]
        try:
            found = read_online(self.client, feature_view=self.lookup.view, entity_rows=entities, features=missing)
        except OSError as exc:  # redis' ConnectionError is an OSError
            raise InputError("features", f"the online feature store did not answer ({exc}).", status=503) from None
        enriched = dict(columns)
        for name in missing:
            enriched[name] = [values[name] for values in found]
        return enriched

    def model_inputs(self, columns: dict[str, list[Any]], signature_columns: set[str]) -> dict[str, list[Any]]:
        """The columns without the entity keys the version does not take as inputs (they only found its features)."""
        extra = [key for key in self.lookup.entity_keys if key in columns and key not in signature_columns]
        return {name: values for name, values in columns.items() if name not in extra}


def online_features(lookup: FeatureLookup | None, environ: dict[str, str] | None = None) -> OnlineFeatures | None:
    if lookup is None:
        return None
    environ = os.environ if environ is None else environ
    url = environ.get(REDIS_URL_VARIABLE)
    if not url:
        raise ConfigError(f"{REDIS_URL_VARIABLE} must be set: the deployment fetches features from the online store.")
    import redis

    return OnlineFeatures(lookup, redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0))
