"""The API's Swagger UI renders in Chromium under the site's Content-Security-Policy (script-src 'self'),
from the site's own static files, and its "Try it out" calls the API with the session."""
from __future__ import annotations

import pytest

from tests import factories
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_under_the_csp_and_calls_the_api(page, live_server):
    factories.make_user("docs-reader", roles=("operators",))
    violations, foreign = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(live_server.url) else None)
    login(page, live_server.url, "docs-reader")
    page.click("nav >> text=API")
    page.wait_for_url("**/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "RLAIF Studio API" in page.inner_text(".swagger-ui .info .title")
    block = '[id^="operations-runs-"][id$="_list_runs"]'  # GET /api/v1/runs/
    page.click(f"{block} .opblock-summary")
    page.click(f"{block} .try-out__btn")
    page.click(f"{block} .execute")
    page.wait_for_selector(f"{block} .live-responses-table .response-col_status")
    status = page.inner_text(f"{block} .live-responses-table tbody .response-col_status")
    assert status.strip().startswith("200")
    assert violations == [] and foreign == []
