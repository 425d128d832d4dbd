"""The /phone page in real headless Chromium (Debian's, driven by playwright, no download):
opened from the link `voicenode serve` prints (a phone token in the fragment, removed from the
address bar once read), the fake microphone plays an utterance, the page places the call, the
transcript appears."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import async_playwright, expect

from control_api.phone import PhoneTokens
from media.clock import MonotonicClock
from tests.support.chromium import CHROMIUM, _chromium_installed, chromium_args
from tests.support.harness import ADMIN_KEY, serve_node
from tests.support.host import AGENT_TEXT, USER_TEXT, FakeHost

__all__ = ["_chromium_installed"]  # autouse


async def test_phone_page_calls_the_node_in_chromium(utterance_wav: Path, tmp_path: Path) -> None:
    host = FakeHost()
    phone = PhoneTokens(3600)
    token = phone.issue(MonotonicClock().now())
    async with serve_node(host, phone=phone) as node, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(utterance_wav)
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 760})
            console: list[str] = []
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            await page.goto(f"{node.url}/phone#key={token}&agent=receptionist")
            await expect(page.locator("#key")).to_have_value(token)
            # the token is out of the address bar (and so out of history and bookmarks)
            await expect(page).to_have_url(f"{node.url}/phone")
            await page.fill("#agent", "receptionist")
            await page.click("#call")

            info = await asyncio.wait_for(host.started.get(), 20)
            assert info.tenant_id == "demo" and info.transport == "webrtc"
            await expect(page.locator("#call-state")).to_have_text("connected", timeout=20_000)
            user = page.locator("#transcript li.user:not(.partial) .text")
            await expect(user).to_have_text(USER_TEXT, timeout=20_000)
            agent = page.locator("#transcript li.agent .text")
            await expect(agent).to_have_text(AGENT_TEXT)
            await expect(page.locator("#latency li")).to_have_text("turn 1: 321 ms")
            await expect(page.locator("#agent-state")).to_have_text("listening")
            level = await page.locator("#mic-level").evaluate("e => e.style.width")
            assert level.endswith("%")
            await page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

            await page.click("#hangup")
            assert await asyncio.wait_for(host.finished.get(), 20) == info.call_id
            await expect(page.locator("#call-state")).to_contain_text("ended")
            await expect(page.locator("#call")).to_be_enabled()
        finally:
            await browser.close()
        async with asyncio.timeout(10):
            await host.wait_idle()
    assert (tmp_path / "phone.png").stat().st_size > 10_000, console


async def test_phone_page_shows_refusals(utterance_wav: Path) -> None:
    host = FakeHost()
    host.start_drain()
    async with serve_node(host) as node, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(utterance_wav)
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{node.url}/phone?key=wrong#tenant=demo")
            await expect(page).to_have_url(f"{node.url}/phone")
            await page.click("#call")
            await expect(page.locator("#message")).to_contain_text("401", timeout=20_000)
            await page.fill("#key", ADMIN_KEY)
            await page.click("#call")
            await expect(page.locator("#message")).to_contain_text("503", timeout=20_000)
            await expect(page.locator("#message")).to_contain_text("retry after 17 s")
            await expect(page.locator("#call")).to_be_enabled()
        finally:
            await browser.close()
