"""API keys: hashed at rest, bound to a role, revocable, audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from aiw.errors import AuthError, InvalidInputError, NotFoundError, PolicyViolation
from aiw.governance.identity import PERMISSIONS, ROLES, Principal
from aiw.workspace import Workspace

pytestmark = pytest.mark.unit


def test_key_round_trip_and_hash_at_rest(workspace: Workspace) -> None:
    key, secret = workspace.keys.create("ci", "analyst", actor="tester")
    assert secret.startswith(f"aiw_{key.id}_")
    with workspace.db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    assert secret not in str(dict(stored)) and len(stored["key_hash"]) == 64
    principal = workspace.keys.authenticate(secret)
    assert principal == Principal("ci", "analyst", key.id)
    assert principal.can("sql:query") and not principal.can("models:approve")


def test_revoked_unknown_and_malformed_keys_are_refused(workspace: Workspace) -> None:
    key, secret = workspace.keys.create("temp", "viewer", actor="tester")
    workspace.keys.revoke(key.id, actor="tester")
    with pytest.raises(AuthError, match="revoked"):
        workspace.keys.authenticate(secret)
    with pytest.raises(AuthError, match="Unknown"):
        workspace.keys.authenticate(secret[:-2] + "xx")
    with pytest.raises(AuthError, match="Malformed"):
        workspace.keys.authenticate("hunter2")
    with pytest.raises(AuthError, match="No API key"):
        workspace.keys.authenticate(None)
    with pytest.raises(NotFoundError):
        workspace.keys.revoke("nope", actor="tester")
    listed = {k.id: k for k in workspace.keys.list()}
    assert not listed[key.id].active
    assert key.id not in {k.id for k in workspace.keys.list(include_revoked=False)}


def test_every_change_is_audited(workspace: Workspace) -> None:
    key, _ = workspace.keys.create("aud", "approver", actor="alice")
    workspace.keys.revoke(key.id, actor="bob")
    actions = [(r.actor, r.action, r.resource) for r in workspace.audit.records(newest_first=False)]
    assert actions == [("alice", "keys.create", f"key:{key.id}"), ("bob", "keys.revoke", f"key:{key.id}")]


def test_bad_role_and_name(workspace: Workspace) -> None:
    with pytest.raises(InvalidInputError, match="Unknown role 'boss'"):
        workspace.keys.create("x", "boss", actor="t")
    with pytest.raises(InvalidInputError, match="name"):
        workspace.keys.create("  ", "viewer", actor="t")


def test_roles_grant_what_they_should() -> None:
    assert set(PERMISSIONS) == set(ROLES)
    assert PERMISSIONS["viewer"] < PERMISSIONS["analyst"] < PERMISSIONS["data_scientist"] < PERMISSIONS["admin"]
    assert "models:approve" in PERMISSIONS["approver"] and "models:approve" not in PERMISSIONS["data_scientist"]
    with pytest.raises(PolicyViolation, match="lacks the permission 'keys:admin'"):
        Principal("v", "viewer").require("keys:admin")
