"""Property-based fuzzing of every API operation (schemathesis + hypothesis): whatever the input,
the API answers with a clear 4xx in the one error shape, never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_no_operation_answers_a_server_error(workspace) -> None:  # type: ignore[no-untyped-def]
    from aiw.api import create_app

    admin = workspace.keys.create("fuzz-admin", "admin", actor="fuzz")[1]
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(workspace.settings))
    headers = {"Authorization": f"Bearer {admin}"}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            where = (case.method, case.formatted_path, response.status_code, response.text[:300])
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert "message" in response.json()["error"], where

        check()
        checked.append(operation.label)
    assert len(checked) >= 8
