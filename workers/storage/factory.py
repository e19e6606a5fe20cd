"""Build the artifact store named by a URI: `file:///absolute/folder` or `s3://bucket[/prefix]`."""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from workers.storage.base import ArtifactStore, UnsafeKey

SCHEMES = ("file", "s3")


def artifact_store_from_uri(uri: str, *, endpoint_url: str | None = None, region: str | None = None) -> ArtifactStore:
    """The store for `uri`. `endpoint_url` and `region` apply to s3:// only (None = AWS defaults).

    Raises ValueError for anything else, naming the scheme: relative or remote file URIs, query strings, fragments,
    credentials in the URI, invalid bucket names.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("ARTIFACT_STORE is empty: use file:///absolute/folder or s3://bucket/prefix")
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"unsupported artifact store scheme {parts.scheme or '(none)'!r} in {uri!r}: use file:// or s3://"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"the artifact store URI {uri!r} must not have a query string or a fragment")
    if parts.username or parts.password:
        raise ValueError("the artifact store URI must not carry credentials: use the AWS_* environment variables")

    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file:// URIs name a local absolute folder (file:///srv/artifacts), got {uri!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"file:// URIs need an absolute path (file:///srv/artifacts), got {uri!r}")
        from workers.storage.local import LocalArtifactStore

        return LocalArtifactStore(Path(path))

    if not parts.netloc:
        raise ValueError(f"s3:// URIs name a bucket (s3://bucket/prefix), got {uri!r}")
    from workers.storage.s3 import S3ArtifactStore  # boto3 is imported only when S3 is used

    try:
        return S3ArtifactStore(parts.netloc, unquote(parts.path), endpoint_url=endpoint_url, region=region)
    except UnsafeKey as exc:
        raise ValueError(f"invalid prefix in the artifact store URI {uri!r}: {exc}") from None
