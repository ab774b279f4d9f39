"""A 403 uses the site layout and says which role the page needs."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_forbidden_page_names_the_needed_role_in_the_site_layout(client, viewer):
    client.force_login(viewer)
    response = client.get(reverse("runs:launch"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "This page needs the &#x27;operators&#x27; role." in page
    assert 'class="topbar"' in page and "Not allowed" in page  # base.html, not the bare default
    assert "logged in as vic, with no role" in page


def test_forbidden_post_says_so_too(client, auditor):
    from tests import factories

    run = factories.make_run()
    client.force_login(auditor)
    response = client.post(reverse("runs:cancel", args=[run.pk]))
    assert response.status_code == 403
    assert "operators" in response.content.decode() and "with the role auditor" in response.content.decode()
