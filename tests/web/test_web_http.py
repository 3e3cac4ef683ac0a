"""The inbox over HTTP, against the real app on a SQLite file and on Postgres: pages, JSON, decisions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import agent_input
from durable_graph.runs import RunSettings
from durable_graph.runs.agent import build_graph
from durable_graph.runs.runner import run_config, stream
from durable_graph.runs.status import latest
from durable_graph.web import views
from tests.web.conftest import TOKEN, Inbox, inbox_app, start_waiting
from tests.web.tools import RELEASE, STARTED

BEARER = {"authorization": f"Bearer {TOKEN}"}


def reports(workdir: Path) -> dict[str, str]:
    folder = workdir / "reports"
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.exists() else {}


def latest_checkpoint(url: str, thread_id: str) -> str:
    with open_checkpointer(url) as saver:
        return str(latest(saver, thread_id).checkpoint["id"])


def test_the_inbox_lists_waiting_calls_newest_first(url: str, workdir: Path, inbox: Inbox) -> None:
    older = start_waiting(url, workdir)
    newer = start_waiting(url, workdir, "search for pears in my files and write a report")
    done = "calculated-" + older
    settings = RunSettings(workdir=str(workdir))
    with open_checkpointer(url) as saver:
        list(stream(build_graph(settings, saver), agent_input("what is 2 + 3?"), run_config(done, settings)))

    items = inbox.client.get("/api/inbox").json()["items"]
    threads = [i["thread"] for i in items]
    assert threads.index(newer) < threads.index(older) and done not in threads
    item = items[threads.index(newer)]
    assert item["task"] == "search for pears in my files and write a report"
    assert item["tool"] == "write_report"
    assert item["args"]["content"] == "Search for 'pears':\nnotes.txt:1: Budget: 42 apples and 17 pears."
    assert item["waited"].endswith((" s", " min")) and item["waited_seconds"] >= 0

    html = inbox.page("/")
    assert html.index(newer) < html.index(older) and done not in html
    assert "search for pears in my files and write a report" in html and "write_report" in html


def test_the_thread_page_shows_status_messages_timeline_and_the_decision(
    url: str, workdir: Path, inbox: Inbox
) -> None:
    thread_id = start_waiting(url, workdir)

    view = inbox.client.get(f"/api/threads/{thread_id}").json()
    assert (view["status"], view["active"], view["task"]) == (
        "interrupted",
        False,
        "search for apples in my files and write a report",
    )
    assert view["approval"]["tool"] == "write_report" and view["approval"]["interrupt_id"]
    assert [m["type"] for m in view["messages"]] == ["human", "ai", "tool", "ai"]
    assert [r["node"] for r in view["timeline"]] == ["input", "__start__", "plan", "tool", "plan"]
    assert "search_files" in view["timeline"][3]["changed"] and view["timeline"][-1]["interrupts"]

    html = inbox.page(f"/threads/{thread_id}")
    assert 'id="status">interrupted<' in html
    assert 'id="approve"' in html and 'id="edit"' in html and 'id="reject"' in html
    assert view["approval"]["interrupt_id"] in html
    assert "notes.txt:1: Budget: 42 apples and 17 pears." in html  # the tool message
    assert "calls search_files" in html  # the timeline


def test_approve_continues_the_run_and_the_page_follows_it(url: str, workdir: Path, inbox: Inbox) -> None:
    thread_id = start_waiting(url, workdir)

    response = inbox.decide(thread_id, "approve")
    assert (response.status_code, response.headers["location"]) == (303, f"/threads/{thread_id}")
    progress = inbox.wait_until_stopped(thread_id)

    assert progress["status"] == "done"
    assert progress["run"]["action"] == "approve" and progress["run"]["state"] == "finished"
    assert [e["node"] for e in progress["run"]["events"]] == ["tool", "plan", "evaluate"]
    assert "write_report" in progress["run"]["events"][0]["summary"]
    assert list(reports(workdir)) == ["report-search-for-apples-in-my-files-and-write-a-report.md"]
    html = inbox.page(f"/threads/{thread_id}")
    assert 'id="status">done<' in html and "Decision: approve" in html and 'id="approve"' not in html
    assert thread_id not in [i["thread"] for i in inbox.client.get("/api/inbox").json()["items"]]


def test_a_bad_edit_shows_the_error_and_stores_nothing(url: str, workdir: Path, inbox: Inbox) -> None:
    thread_id = start_waiting(url, workdir)
    before = latest_checkpoint(url, thread_id)

    not_json = inbox.decide(thread_id, "edit", args='{"title": "Apples",')
    assert not_json.status_code == 422
    assert 'id="decision-error">the text you entered is not valid JSON' in not_json.text
    assert "{&#34;title&#34;: &#34;Apples&#34;," in not_json.text  # the text is kept to be corrected
    wrong_args = inbox.decide(thread_id, "edit", args='{"titel": "Apples", "content": "x"}')
    assert wrong_args.status_code == 422
    assert "edited args for &#39;write_report&#39; have unknown names [&#39;titel&#39;]" in wrong_args.text
    no_object = inbox.decide(thread_id, "edit", args='["Apples"]')
    assert no_object.status_code == 422 and "must be a JSON object" in no_object.text

    assert latest_checkpoint(url, thread_id) == before and reports(workdir) == {}
    assert inbox.progress(thread_id)["status"] == "interrupted"

    edited = inbox.decide(thread_id, "edit", args='{"title": "Apples", "content": "only apples"}')
    assert edited.status_code == 303
    assert inbox.wait_until_stopped(thread_id)["status"] == "done"
    assert reports(workdir) == {"apples.md": "# Apples\n\nonly apples\n"}


def test_reject_tells_the_agent_why_and_runs_nothing(url: str, workdir: Path, inbox: Inbox) -> None:
    thread_id = start_waiting(url, workdir)

    blank = inbox.decide(thread_id, "reject", reason="   ")
    assert blank.status_code == 422 and "needs a non-empty &#39;reason&#39;" in blank.text
    assert inbox.decide(thread_id, "reject", reason="no reports on Fridays").status_code == 303
    assert inbox.wait_until_stopped(thread_id)["status"] == "done"

    view = inbox.client.get(f"/api/threads/{thread_id}").json()
    assert "no reports on Fridays" in view["final_answer"]
    assert reports(workdir) == {}


def test_the_api_decides_with_the_token_and_refuses_what_was_decided(
    url: str, workdir: Path, inbox: Inbox
) -> None:
    thread_id = start_waiting(url, workdir)
    api = inbox.client
    pending = api.get(f"/api/threads/{thread_id}").json()["approval"]["interrupt_id"]
    decision = f"/api/threads/{thread_id}/decision"

    stale = api.post(decision, json={"action": "approve", "interrupt_id": "another"}, headers=BEARER)
    assert stale.status_code == 409 and "already decided" in stale.json()["error"]
    unknown = api.post(decision, json={"action": "maybe"}, headers=BEARER)
    assert unknown.status_code == 422 and "action" in unknown.json()["error"]
    bad_args = api.post(decision, json={"action": "edit", "args": {"title": 3}}, headers=BEARER)
    assert bad_args.status_code == 422 and "content: Field required" in bad_args.json()["error"]

    accepted = api.post(decision, json={"action": "approve", "interrupt_id": pending}, headers=BEARER)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["progress"] == f"/api/threads/{thread_id}/progress"
    assert inbox.wait_until_stopped(thread_id)["status"] == "done"
    again = api.post(decision, json={"action": "approve"}, headers=BEARER)
    assert again.status_code == 409
    assert again.json()["error"].startswith(f"Not decided: thread '{thread_id}' is done")


def test_two_decisions_at_once_run_the_call_once(
    url: str, workdir: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("durable_graph.runs.lease.LEASE_WAIT", 0.5)
    thread_id = start_waiting(url, workdir, tools="tests.web.tools:held_report_tools")
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def decide(action: dict[str, object]) -> None:
        barrier.wait()
        response = inbox.client.post(f"/api/threads/{thread_id}/decision", json=action, headers=BEARER)
        answers.append((response.status_code, response.text))

    people = [
        threading.Thread(target=decide, args=(a,))
        for a in ({"action": "approve"}, {"action": "edit", "args": {"title": "Mine", "content": "x"}})
    ]
    for person in people:
        person.start()
    for person in people:
        person.join()

    codes = sorted(code for code, _ in answers)
    assert codes == [202, 409], answers
    refusal = next(text for code, text in answers if code == 409)
    assert "busy" in refusal  # the run of the other decision holds the thread
    progress = inbox.progress(thread_id)
    assert (progress["status"], progress["active"]) == ("running", True)
    (workdir / RELEASE).write_text("go")
    assert inbox.wait_until_stopped(thread_id)["status"] == "done"
    assert (workdir / STARTED).read_text() == "started\n"  # the tool ran once
    assert len(reports(workdir)) == 1


def test_an_unknown_thread_is_a_404_page_and_json(url: str, inbox: Inbox) -> None:
    page = inbox.client.get("/threads/no-such-thread")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "thread &#39;no-such-thread&#39; does not exist" in page.text and "Traceback" not in page.text
    for path in ("/api/threads/no-such-thread", "/api/threads/no-such-thread/progress"):
        response = inbox.client.get(path)
        assert response.status_code == 404
        assert response.json() == {
            "error": "thread 'no-such-thread' does not exist (no checkpoint was ever saved for it)"
        }
    posted = inbox.client.post(
        "/api/threads/no-such-thread/decision", json={"action": "approve"}, headers=BEARER
    )
    assert posted.status_code == 404
    assert inbox.client.get("/no/such/page").status_code == 404
    assert inbox.client.get("/api/no/such/route").json() == {"error": "no such page"}


def test_all_threads_filtered_by_status_and_paged(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    waiting = [start_waiting(url, workdir) for _ in range(3)]
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    with inbox_app(url) as client:
        client.get(f"/login?token={TOKEN}")
        first = client.get("/api/threads?status=interrupted").json()
        second = client.get("/api/threads?status=interrupted&page=2").json()
        assert (first["total"], first["pages"], second["page"]) == (3, 2, 2)
        assert [t["thread"] for t in first["items"] + second["items"]] == waiting[::-1]
        assert client.get("/api/threads?status=done").json()["items"] == []
        assert client.get("/api/inbox?page=2").json()["items"][0]["thread"] == waiting[0]

        html = client.get("/threads?status=interrupted&page=2").text
        assert waiting[0] in html and waiting[2] not in html and "page 2 of 2" in html
        bad = client.get("/threads?status=sleeping")
        assert (
            bad.status_code == 422 and "status must be one of running, interrupted, done, failed" in bad.text
        )
        bad_page = client.get("/api/threads?page=0")
        assert bad_page.status_code == 422 and bad_page.json()["error"].startswith("invalid request: page:")
