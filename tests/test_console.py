"""The operators' console: signing in with an admin key gives a cookie that stands for the
key on the admin routes (and nowhere else), only from the console's own requests; the page
itself holds nothing secret. Its end-to-end use in a browser is in tests/test_page.py."""

from __future__ import annotations

import pytest

from bot.channels.access import CONSOLE_COOKIE, OperatorSignIns, fingerprint
from tests.test_admin import ADMIN, CHAT

CONSOLE = {"X-Shopbot-Console": "1"}


@pytest.fixture
def client(staffed_client):
    return staffed_client


def sign_in(client, key="admin-key", headers=CONSOLE):
    return client.post("/admin/sign-in", json={"key": key}, headers=headers)


def test_the_console_page_holds_no_key_and_may_not_be_framed(client):
    page = client.get("/admin")
    assert page.status_code == 200 and "shopbot console" in page.text
    assert "admin-key" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_only_an_admin_key_signs_in(client):
    assert sign_in(client, "chat-key").status_code == 401
    assert sign_in(client, "guess").status_code == 401
    assert sign_in(client, headers={}).status_code == 403  # not from the console's script
    assert client.get("/v1/admin/handoffs").status_code == 401
    signed = sign_in(client)
    assert signed.status_code == 200
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "admin-key" not in cookie


def test_the_sign_in_cookie_works_the_inbox_and_nothing_else(client):
    client.post("/v1/chat", json={"session_id": "c-1", "message": "can I talk to a real person"},
                headers=CHAT)  # fmt: skip
    sign_in(client)
    [waiting] = client.get("/v1/admin/handoffs").json()["sessions"]
    assert waiting["session_id"] == "c-1"
    transcript = client.get("/v1/admin/sessions/c-1").json()
    assert transcript["handed_off"] and transcript["turns"][0]["message"] == waiting["last_message"]
    assert client.get("/v1/admin/sessions/nobody").status_code == 404

    reply = {"text": "Hi, Sam here."}
    forged = client.post("/v1/sessions/c-1/messages", json=reply)  # no console header
    assert forged.status_code == 403
    assert client.post("/v1/sessions/c-1/messages", json=reply, headers=CONSOLE).status_code == 201
    assert client.post("/v1/sessions/c-1/release", headers=CONSOLE).json()["released"]
    assert client.get("/v1/sessions/c-1").status_code == 401  # chat routes still need a key
    assert client.get("/v1/admin/metrics.csv").headers["content-type"].startswith("text/csv")

    client.post("/admin/sign-out", headers=CONSOLE)
    assert client.get("/v1/admin/handoffs").status_code == 401


def test_a_forged_expired_or_revoked_sign_in_is_refused(client):
    now = [1_000_000.0]
    sign_ins = OperatorSignIns(b"0123456789abcdef", ["admin-key", "old-key"], clock=lambda: now[0])
    token = sign_ins.issue("admin-key")
    assert sign_ins.owner(token) == "key:" + fingerprint("admin-key")
    expires, key, signature = token.split(".")
    assert sign_ins.owner(f"{int(expires) + 9999}.{key}.{signature}") is None  # edited
    assert OperatorSignIns(b"another-secret-16b", ["admin-key"]).owner(token) is None
    assert OperatorSignIns(b"0123456789abcdef", ["new-key"]).owner(token) is None  # key gone
    now[0] += 9 * 3600
    assert sign_ins.owner(token) is None  # expired

    client.cookies.set(CONSOLE_COOKIE, token)
    assert client.get("/v1/admin/handoffs").status_code == 401
    assert client.get("/v1/admin/handoffs", headers=ADMIN).status_code == 200
