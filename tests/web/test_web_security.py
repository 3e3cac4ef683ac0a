"""Who may use the inbox: the token, sessions, CSRF and Origin checks, and the response headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from durable_graph.web.security import SESSION_COOKIE
from tests.web.conftest import ORIGIN, TOKEN, inbox_app, start_waiting


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'threads.db'}"


@pytest.fixture
def client(url: str) -> Iterator[TestClient]:
    with inbox_app(url) as client:
        yield client


def log_in(client: TestClient) -> None:
    assert client.get(f"/login?token={TOKEN}", follow_redirects=False).status_code == 303


def csrf_of(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def still_waiting(client: TestClient, thread_id: str) -> bool:
    status = client.get(f"/api/threads/{thread_id}", headers={"authorization": f"Bearer {TOKEN}"}).json()[
        "status"
    ]
    return bool(status == "interrupted")


def test_requests_without_the_token_are_refused(url: str, workdir: Path, client: TestClient) -> None:
    thread_id = start_waiting(url, workdir)

    page = client.get(f"/threads/{thread_id}", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, f"/login?next=%2Fthreads%2F{thread_id}")
    api = client.get("/api/inbox")
    assert (api.status_code, api.headers["www-authenticate"]) == (401, "Bearer")
    assert "needs the inbox token" in api.json()["error"]
    wrong = client.get("/api/inbox", headers={"authorization": "Bearer not-the-token"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "wrong token"})

    form = client.post(
        f"/threads/{thread_id}/decision", data={"action": "approve"}, headers={"origin": ORIGIN}
    )
    assert form.status_code == 401 and "needs the inbox token" in form.text
    posted = client.post(f"/api/threads/{thread_id}/decision", json={"action": "approve"})
    assert posted.status_code == 401
    assert still_waiting(client, thread_id)


def test_a_browser_session_needs_its_csrf_token_and_this_origin(
    url: str, workdir: Path, client: TestClient
) -> None:
    thread_id = start_waiting(url, workdir)
    log_in(client)
    csrf = csrf_of(client, f"/threads/{thread_id}")
    path = f"/threads/{thread_id}/decision"

    refusals = [
        client.post(path, data={"action": "approve"}, headers={"origin": ORIGIN}),
        client.post(path, data={"action": "approve", "csrf_token": "forged"}, headers={"origin": ORIGIN}),
        client.post(
            path, data={"action": "approve", "csrf_token": csrf}, headers={"origin": "http://evil.example"}
        ),
        client.post(path, data={"action": "approve", "csrf_token": csrf}),  # neither Origin nor Referer
        client.post(
            f"/api/threads/{thread_id}/decision", json={"action": "approve"}, headers={"origin": ORIGIN}
        ),
    ]
    assert [r.status_code for r in refusals] == [403] * 5
    assert "CSRF token is missing or wrong" in refusals[0].text
    assert "did not come from a page of this inbox" in refusals[2].text
    assert still_waiting(client, thread_id)

    referer = {"referer": f"{ORIGIN}/threads/{thread_id}"}
    accepted = client.post(
        path, data={"action": "approve", "csrf_token": csrf}, headers=referer, follow_redirects=False
    )
    assert accepted.status_code == 303


def test_a_bearer_token_needs_no_session_and_no_csrf(url: str, workdir: Path, client: TestClient) -> None:
    thread_id = start_waiting(url, workdir)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/inbox", headers=bearer).json()["items"][0]["thread"] == thread_id
    response = client.post(f"/api/threads/{thread_id}/decision", json={"action": "approve"}, headers=bearer)
    assert response.status_code == 202


def test_logging_in_and_out(client: TestClient) -> None:
    form = client.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    wrong = client.get("/login?token=nope")
    assert wrong.status_code == 401 and "wrong token" in wrong.text and SESSION_COOKIE not in client.cookies

    elsewhere = client.post("/login", data={"token": TOKEN}, headers={"origin": "http://evil.example"})
    assert elsewhere.status_code == 403 and SESSION_COOKIE not in client.cookies
    entered = client.post(
        "/login",
        data={"token": TOKEN, "next": "//evil.example/x"},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )
    assert (entered.status_code, entered.headers["location"]) == (303, "/")  # never to another host
    cookie = entered.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/", follow_redirects=False).status_code == 200

    out = client.post(
        "/logout",
        data={"csrf_token": csrf_of(client, "/")},
        headers={"origin": ORIGIN},
        follow_redirects=False,
    )
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sessions_outlive_a_restart_with_the_same_token_only(url: str) -> None:
    with inbox_app(url) as client:
        log_in(client)
        cookie = client.cookies[SESSION_COOKIE]
    with inbox_app(url) as same:
        same.cookies.set(SESSION_COOKIE, cookie)
        assert same.get("/", follow_redirects=False).status_code == 200
    with inbox_app(url, token="another-token") as other:
        other.cookies.set(SESSION_COOKIE, cookie)
        assert other.get("/", follow_redirects=False).status_code == 303


def test_pages_say_they_must_not_be_framed_or_cached(client: TestClient) -> None:
    log_in(client)
    headers = client.get("/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "same-origin"


def test_static_files_need_no_token_and_the_schema_does(client: TestClient) -> None:
    assert client.get("/static/inbox.css").status_code == 200
    assert client.get("/api/openapi.json").status_code == 401
    log_in(client)
    paths = client.get("/api/openapi.json").json()["paths"]
    assert sorted(paths) == [
        "/api/inbox",
        "/api/threads",
        "/api/threads/{thread_id}",
        "/api/threads/{thread_id}/decision",
        "/api/threads/{thread_id}/progress",
    ]


def test_the_api_takes_a_browser_session_with_its_csrf_header(
    url: str, workdir: Path, client: TestClient
) -> None:
    thread_id = start_waiting(url, workdir)
    log_in(client)
    path = f"/api/threads/{thread_id}/decision"
    csrf = csrf_of(client, f"/threads/{thread_id}")
    without = client.post(path, json={"action": "approve"}, headers={"origin": ORIGIN})
    assert without.status_code == 403 and still_waiting(client, thread_id)
    with_header = client.post(
        path, json={"action": "approve"}, headers={"origin": ORIGIN, "x-csrf-token": csrf}
    )
    assert with_header.status_code == 202, with_header.text
