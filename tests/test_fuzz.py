"""Schemathesis against /api/openapi.json: no server errors, no response outside the schema.

`make test` runs a bounded number of examples per operation; `make fuzz` many more
(TODOPY_FUZZ_EXAMPLES).
"""
from __future__ import annotations

import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support import register
from todopy import idempotency, openapi

EXAMPLES = int(os.environ.get("TODOPY_FUZZ_EXAMPLES", "30"))
schema = schemathesis.openapi.from_dict(openapi.document())
# Valid and invalid inputs alike: invalid ones must be refused with a documented 4xx, never a 500.
schema.config.generation.update(modes=list(schemathesis.GenerationMode), allow_x00=True)
# Valid data may still meet a rule no schema can state: a stale or unmatched If-Match is a 412.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    *schema.config.checks.positive_data_acceptance.expected_statuses, "412"]


@pytest.fixture(scope="module")
def fuzz_user(server):
    """One signed-in user with a few todos, so that generated ids sometimes hit real rows."""
    user = register(server.base_url)
    for title in ("one", "two", "three"):
        user.create_todo(title)
    return user


@pytest.fixture(autouse=True)
def clean_database():
    """The fuzzer's user and todos live for the whole module (overrides the per-test cleanup)."""


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_description(case, server, fuzz_user):
    if case.path in ("/api/session/",) and case.method == "DELETE":
        # Signing the fuzzer out would turn every later case into a 401.
        headers = {}
    else:
        headers = {"Authorization": f"Bearer {fuzz_user.token}"}
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and idempotency.KEY.fullmatch(key.strip(" \t")):
        # A fresh key for every valid one: a generated key sent again with another request is a 422 by design.
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    case.call_and_validate(base_url=server.base_url, headers=headers)
