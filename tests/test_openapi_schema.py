"""The whole API is documented: `manage.py spectacular --validate --fail-on-warn` passes, and every route under
/api/v1/ appears in the schema."""

import re
from io import StringIO

import yaml
from django.core.management import call_command
from django.urls import reverse


def test_schema_validates_with_no_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=StringIO())
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "mlplatform API"


def test_every_api_route_is_in_the_schema(tmp_path):
    from tests.test_route_inventory import all_paths

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target), stderr=StringIO())
    documented = yaml.safe_load(target.read_text())["paths"]
    patterns = [re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$") for path in documented]
    api_paths = [path for path in all_paths() if path.startswith("/api/v1/") and ".json" not in path]
    undocumented = [path for path in api_paths if not any(p.match(path) for p in patterns)]
    assert api_paths
    assert undocumented == []


def test_schema_needs_a_login(client, db):
    assert client.get(reverse("api-schema")).status_code in (401, 403)
