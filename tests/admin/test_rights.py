"""Rights, roles and principals as pure data (core/platform.py): patterns, exclusions, per-project and
platform-wide assignments, and a token's narrower scope."""

from __future__ import annotations

import pytest

from madbase.core.platform import AdminRequest, Principal, grants, is_pattern, is_right, scrub

OWNER = ("*",)
DEVELOPER = ("*", "!admins.*", "!keys.write", "!projects.delete")
READ_ONLY = ("*.read",)


@pytest.mark.parametrize(("rights", "right", "expected"), [
    (OWNER, "projects.delete", True),
    (DEVELOPER, "functions.write", True),
    (DEVELOPER, "keys.read", True),
    (DEVELOPER, "keys.write", False),
    (DEVELOPER, "admins.read", False),
    (DEVELOPER, "projects.delete", False),
    (READ_ONLY, "auth.read", True),
    (READ_ONLY, "auth.write", False),
    (("auth.*",), "auth.write", True),
    (("auth.*",), "storage.read", False),
    (("!auth.read", "*"), "auth.read", False),  # an exclusion wins wherever it stands
    ((), "auth.read", False),
])
def test_role_grants(rights: tuple[str, ...], right: str, expected: bool) -> None:
    assert grants(rights, right) is expected


def test_right_and_pattern_syntax() -> None:
    assert is_right("projects.write") and not is_right("projects") and not is_right("*.read")
    for good in ("*", "auth.*", "*.read", "!keys.write", "!*"):
        assert is_pattern(good), good
    for bad in ("", "**", "a.b.c", "Auth.read", "auth.", "!!x.y", "auth read", "x.*y"):
        assert not is_pattern(bad), bad


def test_project_roles_apply_to_their_project_only() -> None:
    p = Principal("a", "a@x", "session", projects={"p1": (OWNER,), "p2": (READ_ONLY,)})
    assert p.allows("auth.write", "p1") and not p.allows("auth.write", "p2") and p.allows("auth.read", "p2")
    assert not p.allows("auth.read", "p3") and not p.allows("auth.read")  # nothing platform-wide
    assert p.project_refs("auth.write") == frozenset({"p1"})
    assert p.project_refs("auth.read") == frozenset({"p1", "p2"})
    assert not p.is_platform_admin


def test_platform_roles_apply_everywhere_and_tokens_narrow_them() -> None:
    admin = Principal("a", "a@x", "session", platform=(OWNER,))
    assert admin.allows("admins.write") and admin.allows("keys.write", "any") and admin.is_platform_admin
    assert admin.project_refs("keys.write") is None
    narrowed = Principal("a", "a@x", "token", platform=(OWNER,), token_rights=("*.read",),
                         token_projects=frozenset({"p1"}))
    assert narrowed.allows("auth.read", "p1")
    assert not narrowed.allows("auth.write", "p1")  # rights outside the token's
    assert not narrowed.allows("auth.read", "p2")  # projects outside the token's
    assert not narrowed.allows("audit.read")  # a project-scoped token holds nothing platform-wide
    assert narrowed.project_refs("auth.read") == frozenset({"p1"}) and not narrowed.is_platform_admin
    # a token never widens: rights its admin lacks stay refused
    reader = Principal("a", "a@x", "token", projects={"p1": (READ_ONLY,)}, token_rights=("*",))
    assert not reader.allows("auth.write", "p1")


def test_audit_details_are_scrubbed() -> None:
    details = {"email": "x@y", "password": "hunter2", "nested": {"client_secret": "s", "ok": 1},
               "api_key": "k", "totp_code": "123456", "name": "n"}
    assert scrub(details) == {"email": "x@y", "password": "[redacted]", "nested": {"client_secret": "[redacted]",
                                                                                    "ok": 1},
                              "api_key": "[redacted]", "totp_code": "[redacted]", "name": "n"}


async def test_audit_is_once_per_request() -> None:
    request = AdminRequest({"type": "http", "method": "POST", "path": "/admin/v1/x", "headers": []},
                           _receive, None)  # type: ignore[arg-type]
    await request.audit("x.create", "x/1", {"secret": "s"})
    assert request.audited is not None and request.audited.details == {"secret": "[redacted]"}
    with pytest.raises(RuntimeError):
        await request.audit("x.create", "x/1")


async def _receive() -> dict[str, object]:
    return {"type": "http.request", "body": b""}
