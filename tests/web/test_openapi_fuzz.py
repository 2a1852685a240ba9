"""schemathesis against the app's own OpenAPI spec: no generated input may cause a 5xx.

Runs execute for real but the caps are tiny (20 requests, 5 simulated seconds), so almost
every generated config is refused with 422 and the few accepted ones finish at once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the webtest extra is not installed")
pytest.importorskip("fastapi", reason="the web extra is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    allow_header_conformance,
    positive_data_acceptance,
)

from kvsim.web import create_app  # noqa: E402

_RUNS = Path(tempfile.mkdtemp(prefix="kvsim-fuzz-"))
APP = create_app(
    _RUNS,
    max_workers=1,
    max_queued=2,
    max_requests_per_run=20,
    max_sim_time_s=5.0,
    max_upload_bytes=4096,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    APP.state.runs.shutdown()
    shutil.rmtree(_RUNS, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case: schemathesis.Case) -> None:
    # Every check but two: a schema-valid config may still break a server cap or name an
    # unknown preset (422 is the right answer), and FastAPI's 405 ``Allow`` header lists only
    # the methods of the first matching route.
    case.call_and_validate(excluded_checks=[positive_data_acceptance, allow_header_conformance])
