"""The inbox in a real headless Chromium (Debian's package, driven by Playwright) against
``durable-graph serve`` in a process of its own: open the inbox, edit and approve, reject, a bad
edit, requests without the token.

The screenshots it takes are those of docs/inbox.md: set ``DURABLE_GRAPH_SCREENSHOTS`` to a directory
(docs/images) to keep them there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.web.conftest import serving, start_waiting
from tests.web.tools import RELEASE, STARTED

SCREENSHOTS_ENV = "DURABLE_GRAPH_SCREENSHOTS"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "the browser tests need Chromium: apt-get install chromium (make test does it as root)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def screenshot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_deciding_in_the_browser(browser: Browser, tmp_path: Path, workdir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    edited = start_waiting(url, workdir, tools="tests.web.tools:held_report_tools")
    rejected = start_waiting(url, workdir, "search for pears in my files and write a report")

    with serving(url) as server:  # no token given: it makes one and prints the link to log in
        link = server.printed[2].strip()
        assert link.startswith(f"{server.base}/login?token=")
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        page = context.new_page()

        # without the token: the pages ask for it, and changes are refused
        page.goto(f"{server.base}/threads/{edited}")
        expect(page.locator("h1")).to_have_text("Log in")
        refused = page.request.post(
            f"{server.base}/api/threads/{edited}/decision", data={"action": "approve"}
        )
        assert refused.status == 401 and "needs the inbox token" in refused.json()["error"]

        # the inbox: both calls wait, newest first
        page.goto(link)
        expect(page.locator("#waiting-count")).to_have_text("2")
        cards = page.locator(".card")
        expect(cards.nth(0)).to_have_attribute("data-thread", rejected)
        expect(cards.nth(1)).to_contain_text("search for apples in my files and write a report")
        expect(cards.nth(1)).to_contain_text("write_report")
        screenshot(page, shots, "inbox")

        # a form another site sends is refused, even with the browser logged in
        attacker = context.new_page()
        attacker.set_content(
            f'<form method="post" action="{server.base}/threads/{edited}/decision">'
            '<input name="action" value="approve"><button>go</button></form>'
        )
        with attacker.expect_navigation() as navigation:
            attacker.click("button")
        assert navigation.value is not None and navigation.value.status in (401, 403)
        attacker.close()

        # a bad edit shows the error and keeps the call waiting
        cards.nth(1).get_by_role("link", name="Review").click()
        expect(page.locator("#status")).to_have_text("interrupted")
        screenshot(page, shots, "thread")
        page.fill("#args", '{"title": "Apples", "content": ')
        page.click("#edit")
        expect(page.locator("#decision-error")).to_contain_text("not valid JSON")
        expect(page.locator("#args")).to_have_value('{"title": "Apples", "content": ')
        page.fill("#args", '{"title": "Apples", "contents": "only apples"}')
        page.click("#edit")
        expect(page.locator("#decision-error")).to_contain_text("unknown names ['contents']")
        screenshot(page, shots, "edit-error")
        assert not (workdir / STARTED).exists()

        # edit and approve: the page follows the run until it is done
        page.fill("#args", json.dumps({"title": "Apples", "content": "only apples"}))
        page.click("#edit")
        expect(page.locator("#progress-state")).to_have_text("running…")  # the tool waits to be let go
        expect(page.locator("#approve")).to_have_count(0)
        (workdir / RELEASE).write_text("go")
        expect(page.locator("#status")).to_have_text("done", timeout=30_000)
        expect(page.locator("#progress-events")).to_contain_text("wrote reports/apples.md")
        expect(page.locator("#final-answer")).to_contain_text("wrote reports/apples.md")
        screenshot(page, shots, "done")
        assert (workdir / "reports" / "apples.md").read_text() == "# Apples\n\nonly apples\n"

        # reject the other one with a reason
        page.goto(f"{server.base}/threads/{rejected}")
        page.fill("#reason", "no reports about pears")
        page.click("#reject")
        expect(page.locator("#status")).to_have_text("done", timeout=30_000)
        expect(page.locator("#final-answer")).to_contain_text("no reports about pears")
        page.click("text=Waiting")
        expect(page.locator("#waiting-count")).to_have_text("0")
        context.close()

        code, printed = server.stop(signal.SIGINT)  # Ctrl-C
    assert (code, printed.splitlines()) == (0, ["stopping", "inbox stopped"])
    assert sorted(p.name for p in (workdir / "reports").iterdir()) == ["apples.md"]
