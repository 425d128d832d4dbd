"""The /analytics page in real headless Chromium (Debian's, driven by playwright): opened with
a tenant key in the fragment (removed from the address bar once read), it fetches the summary
with that key and draws calls per day, the outcome mix and voice-to-voice p50/p95 per day as
SVG; a wrong key or another tenant is refused. The screenshot stays under the test's
tmp_path."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import async_playwright, expect

from control_api.analytics import open_analytics
from control_api.analytics_page import analytics_page_router
from control_api.store import Store
from tests.control_api.test_analytics_summary import _calls
from tests.support.analytics import (
    ACME,
    FakeCalls,
    WallClock,
    serve_api,
    settings,
    store,
    wait_for,
)
from tests.support.chromium import CHROMIUM, _chromium_installed

__all__ = ["_chromium_installed", "store"]

RANGE = "from=2025-04-30&to=2025-05-03"
"""T0 of tests.support.analytics is 2025-05-01: acme has 3 calls that day and 1 the next."""


async def test_the_page_charts_the_key_tenants_summary(store: Store, tmp_path: Path) -> None:
    calls, wall = FakeCalls(), WallClock()
    async with (
        open_analytics(settings(), store, calls, wall=wall) as analytics,
        serve_api(analytics, extra=[analytics_page_router()]) as api,
        async_playwright() as pw,
    ):
        _calls(calls, wall)

        async def written() -> bool:
            return analytics.recorder.written == 6 * 5

        await wait_for(written, what="every event written")
        page_response = await api.get("/analytics")
        assert page_response.status_code == 200
        assert "script-src 'self'" in page_response.headers["content-security-policy"]
        url = str(api.base_url)
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 1100})
            console: list[str] = []
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            await page.goto(f"{url}/analytics#key={ACME}&{RANGE}")
            await expect(page).to_have_url(f"{url}/analytics")  # the key left the address bar
            await expect(page.locator("body")).to_have_attribute("data-state", "loaded")
            totals = page.locator("#totals")
            await expect(totals).to_have_attribute("data-calls", "4")
            await expect(totals).to_have_attribute("data-tenant", "acme")

            bars = page.locator("#calls-chart rect.bar")
            await expect(bars).to_have_count(4)  # every day of the range, empty ones too
            per_day = {
                await bar.get_attribute("data-day"): await bar.get_attribute("data-calls")
                for bar in await bars.all()
            }
            assert per_day == {
                "2025-04-30": "0",
                "2025-05-01": "3",
                "2025-05-02": "1",
                "2025-05-03": "0",
            }, console
            outcomes = page.locator("#outcomes-chart rect.outcome")
            mix = [int(await o.get_attribute("data-calls") or 0) for o in await outcomes.all()]
            assert sum(mix) == 4 and mix == sorted(mix, reverse=True), mix
            for quantile in ("p50", "p95"):
                dots = page.locator(f"#latency-chart circle.{quantile}")
                await expect(dots).to_have_count(2)  # the two days with calls
                assert await dots.first.get_attribute("data-ms") == "640"
                await expect(page.locator(f"#latency-chart polyline.{quantile}")).to_have_count(1)
            shot = tmp_path / "analytics.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"analytics page screenshot: {shot}")

            await page.fill("#tenant", "demo")  # a tenant key cannot read another tenant
            await page.click("#show")
            await expect(page.locator("#message")).to_contain_text("403")
            await page.fill("#tenant", "")
            await page.fill("#key", "wrong-key")
            await page.click("#show")
            await expect(page.locator("#message")).to_contain_text("401")
            await expect(page.locator("body")).to_have_attribute("data-state", "error")
        finally:
            await browser.close()
    assert shot.stat().st_size > 10_000
