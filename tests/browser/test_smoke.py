import pytest

from tests.browser.conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_login_then_empty_runs_list(page, live_server, operator):
    login(page, live_server.url, operator.username)
    assert page.locator("h1").inner_text() == "Runs"
    assert "No runs yet." in page.content()


def test_studio_admin_logs_in_and_sees_starter_content(page, studio):
    login(page, studio.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{studio.url}/constitutions/")
    assert "Helpful, harmless and honest (starter)" in page.content()
    page.goto(f"{studio.url}/prompt-sets/")
    assert "Demo prompts (starter)" in page.content()
