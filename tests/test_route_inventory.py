"""Every URL in the URLconf requires authentication, except a short, explicit allowlist.

The test walks the whole URLconf, builds a concrete path for each pattern and calls it anonymously with every method.
Each answer must refuse (redirect to login, 401 or 403) or say the method is not allowed; at least one method must
refuse, so a route nobody can reach anonymously is still proven protected rather than just unreachable.
"""

import re
import uuid

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

# Public on purpose: the login form, the liveness probe and the token endpoint for scripts (it takes a password).
PUBLIC_VIEWS = {"accounts:login", "core:health", "api-token-create"}

METHODS = ["get", "post", "put", "patch", "delete"]
SAMPLE_UUID = str(uuid.UUID(int=1))


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(pattern: str) -> str:
    # Regex groups first: their names look like route converters (`(?P<pk>...)` contains `<pk>`).
    path = re.sub(r"\(\?P<format>[^)]*\)", "json", pattern)
    path = re.sub(r"\(\?P<\w+>[^)]*\)", SAMPLE_UUID, path)
    path = re.sub(r"<uuid:\w+>", SAMPLE_UUID, path)
    path = re.sub(r"<int:\w+>", "1", path)
    path = re.sub(r"<(?:str|slug|path):\w+>|<\w+>", "x", path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    return "/" + path


def all_paths() -> list[str]:
    return sorted({_concrete(p) for p in _walk(get_resolver().url_patterns)})


def _view_name(path: str) -> str:
    return resolve(path).view_name


def _refuses(response) -> bool:
    if response.status_code in (401, 403):
        return True
    login = reverse(settings.LOGIN_URL)
    return response.status_code == 302 and response["Location"].startswith(login)


def test_inventory_finds_the_known_routes():
    paths = all_paths()
    assert "/accounts/login/" in paths
    assert "/api/schema/" in paths
    assert len(paths) >= 20


@pytest.mark.parametrize("path", all_paths())
def test_route_requires_authentication_unless_allowlisted(client, db, path):
    if _view_name(path) in PUBLIC_VIEWS:
        pytest.skip(f"{path} is public on purpose")
    answers = {method: getattr(client, method)(path) for method in METHODS}
    for method, response in answers.items():
        assert response.status_code == 405 or _refuses(response), (
            f"anonymous {method.upper()} {path} answered {response.status_code}"
        )
    assert any(r.status_code != 405 for r in answers.values()), f"{path} refuses every method"


def test_allowlist_names_only_existing_routes():
    names = {_view_name(p) for p in all_paths()}
    assert PUBLIC_VIEWS.issubset(names)
