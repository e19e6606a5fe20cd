"""The online store: the latest value of each feature per entity, in Redis, for serving.

One hash per entity of a feature view, key `fs:<view>:<entity key values joined by ":">` (":" and "%" inside a key
value are percent-encoded, so two different keys never share a hash). Fields: each feature's value, `_ts:<feature>`
(its event time, epoch microseconds) and `_ts` (the newest of them). Values are stored with a one-letter type tag
(f: float, i: int, b: bool, s: text, t: timestamp) so they are read back with their type; a missing value removes
the field.

`write_latest` keeps, per entity and feature, the row with the greatest event time (at equal times the later row),
and a small Lua script writes a feature only when its new event time is at least the stored one: an older
materialisation never overwrites a newer value, and a later materialisation of the same instant wins (as in the
offline join). `read_online` reads a batch of entities in one round trip.
"""

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from workers.ml.features.transforms import EVENT_TIMESTAMP, utc_naive

KEY_PREFIX = "fs"
TIMESTAMP_FIELD = "_ts"
BATCH_ENTITIES = 2000

# KEYS: the entity hashes. ARGV: the number of features, their names, then per key its event time and one tagged
# value per feature ("" = missing). A feature is written when its stored event time is absent or not newer.
_WRITE_SCRIPT = """
local count = tonumber(ARGV[1])
local position = count + 2
for index, key in ipairs(KEYS) do
    local ts = ARGV[position]
    local moment = tonumber(ts)
    for feature = 1, count do
        local name = ARGV[feature + 1]
        local value = ARGV[position + feature]
        local stored = redis.call('HGET', key, '_ts:' .. name)
        if (not stored) or tonumber(stored) <= moment then
            if value == '' then
                redis.call('HDEL', key, name)
            else
                redis.call('HSET', key, name, value)
            end
            redis.call('HSET', key, '_ts:' .. name, ts)
        end
    end
    local newest = redis.call('HGET', key, '_ts')
    if (not newest) or tonumber(newest) < moment then
        redis.call('HSET', key, '_ts', ts)
    end
    position = position + count + 1
end
return #KEYS
"""


def entity_key(feature_view: str, values: Iterable[Any]) -> str:
    """The Redis key of one entity of `feature_view`."""
    return ":".join([KEY_PREFIX, feature_view, *(_key_part(value) for value in values)])


def _key_part(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 42.0 (a key column read as float) and 42 are the same entity
    return str(value).replace("%", "%25").replace(":", "%3A")


def encode_value(value: Any) -> str:
    """A value as tagged text ("" for a missing one)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "b:1" if value else "b:0"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, float):
        return f"f:{value!r}"
    if isinstance(value, datetime | pd.Timestamp):
        return f"t:{pd.Timestamp(value).isoformat()}"
    return f"s:{value}"


def decode_value(text: bytes | str | None) -> Any:
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode()
    tag, value = text[0], text[2:]
    if tag == "f":
        return float(value)
    if tag == "i":
        return int(value)
    if tag == "b":
        return value == "1"
    if tag == "t":
        return pd.Timestamp(value).to_pydatetime()
    return value


def _epoch_microseconds(moments: pd.Series) -> np.ndarray:
    return utc_naive(moments).to_numpy().astype("datetime64[us]").astype("int64")


def latest_rows(frame: pd.DataFrame, entity_keys: list[str]) -> pd.DataFrame:
    """One row per entity: its greatest event time (at equal times the later row)."""
    ordered = frame.assign(__us=_epoch_microseconds(frame[EVENT_TIMESTAMP]), __row=np.arange(len(frame)))
    ordered = ordered.sort_values(["__us", "__row"], kind="stable")
    return ordered.drop_duplicates(entity_keys, keep="last").drop(columns="__row")


def write_latest(client, *, feature_view: str, entity_keys: list[str], frame: pd.DataFrame) -> int:
    """Store each entity's latest feature values of `frame` (entity keys, event_timestamp, one column per feature)
    in `client` (a redis.Redis); returns the number of entities written to (a newer stored value is kept)."""
    features = [name for name in frame.columns if name not in (*entity_keys, EVENT_TIMESTAMP)]
    if any(name.startswith("_") for name in features):
        raise ValueError("Feature names may not start with '_' (reserved for the event times).")
    latest = latest_rows(frame, entity_keys)
    keys = [entity_key(feature_view, values) for values in zip(*(latest[key] for key in entity_keys), strict=True)]
    moments = latest["__us"].astype(str).tolist()
    encoded = [[encode_value(value) for value in latest[name].tolist()] for name in features]
    script = client.register_script(_WRITE_SCRIPT)
    pipeline = client.pipeline(transaction=False)
    for begin in range(0, len(keys), BATCH_ENTITIES):
        arguments: list[str] = [str(len(features)), *features]
        for row in range(begin, min(begin + BATCH_ENTITIES, len(keys))):
            arguments.append(moments[row])
            arguments.extend(column[row] for column in encoded)
        script(keys=keys[begin : begin + BATCH_ENTITIES], args=arguments, client=pipeline)
    pipeline.execute()
    return len(keys)


# One JSON text for the whole batch: redis-py parses one reply instead of (fields x entities) bulk strings, which in
# pure Python costs more than the lookup itself. A missing field is false.
_READ_SCRIPT = """
local rows = {}
for index, key in ipairs(KEYS) do
    rows[index] = redis.call('HMGET', key, unpack(ARGV))
end
return cjson.encode(rows)
"""


def read_online(client, *, feature_view: str, entity_rows: list[dict], features: list[str]) -> list[dict]:
    """For each entity row (a dict of its key values, in the view's key order), {feature: value, ...,
    "event_timestamp": the newest event time of those values (UTC)}; every value None for an unknown entity.
    One round trip for the whole batch: an HMGET for one entity, a read-only script doing the HMGETs for several
    (returning one JSON text)."""
    fields = [*features, *(f"{TIMESTAMP_FIELD}:{name}" for name in features)]
    keys = [entity_key(feature_view, row.values()) for row in entity_rows]
    if len(keys) == 1:
        replies = [client.hmget(keys[0], fields)]
    else:
        replies = json.loads(client.register_script(_READ_SCRIPT)(keys=keys, args=fields)) if keys else []
    results = []
    for reply in replies:
        stored = [text if text is not False else None for text in reply]
        values = {name: decode_value(text) for name, text in zip(features, stored, strict=False)}
        moments = [int(text) for text in stored[len(features) :] if text is not None]
        values[EVENT_TIMESTAMP] = _from_epoch(max(moments)) if moments else None
        results.append(values)
    return results


def _from_epoch(microseconds: int) -> datetime:
    return datetime.fromtimestamp(microseconds // 1_000_000, tz=UTC).replace(microsecond=microseconds % 1_000_000)
