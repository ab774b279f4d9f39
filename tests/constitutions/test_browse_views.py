import pytest
from django.urls import reverse

from constitutions.models import Constitution, ConstitutionVersion
from tests import factories

pytestmark = pytest.mark.django_db

XSS = "<script>alert('x')</script>"


@pytest.fixture
def two_versions(author):
    v1 = factories.make_version(Constitution.objects.create(name="House rules"), author=author)
    v2, _ = ConstitutionVersion.objects.create_version(
        v1.constitution, author=author, note="tighter",
        principles=[factories.principle("Honest"), factories.principle("Helpful", weight=3.0),
                    factories.principle("Brief", category="style")],
    )
    return v1, v2


def test_list_shows_actions_to_authors_only(client, author, viewer, two_versions):
    archived = factories.make_version(Constitution.objects.create(name="Old rules", archived=True)).constitution
    client.force_login(author)
    page = client.get(reverse("constitutions:list")).content.decode()
    assert "House rules" in page and "Old rules" not in page
    assert reverse("constitutions:create") in page and reverse("constitutions:import") in page
    c = two_versions[0].constitution
    for name in ("edit", "fork", "archive", "history"):
        assert reverse(f"constitutions:{name}", args=[c.pk]) in page
    assert reverse("constitutions:version", args=[c.pk, 2]) in page
    page = client.get(reverse("constitutions:list") + "?archived=1").content.decode()
    assert reverse("constitutions:unarchive", args=[archived.pk]) in page

    client.force_login(viewer)
    page = client.get(reverse("constitutions:list")).content.decode()
    assert "House rules" in page and reverse("constitutions:history", args=[c.pk]) in page
    assert reverse("constitutions:create") not in page and reverse("constitutions:edit", args=[c.pk]) not in page


def test_version_page_lists_principles_in_order_and_links(client, viewer, two_versions):
    v1, v2 = two_versions
    client.force_login(viewer)
    response = client.get(v2.get_absolute_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert page.index(">Honest<") < page.index(">Helpful<") < page.index(">Brief<")
    assert "tighter" in page and v2.content_hash[:12] in page and "latest" in page
    assert "?a=1&amp;b=2" in page  # diff with previous
    assert reverse("constitutions:export", args=[v2.constitution_id, 2, "yaml"]) in page
    assert reverse("constitutions:preview", args=[v2.constitution_id, 2]) in page
    assert "Restore as new version" not in page  # viewer, and latest anyway
    assert client.get(reverse("constitutions:detail", args=[v1.constitution_id])).context["version"] == v2


def test_old_version_offers_restore_to_authors(client, author, two_versions):
    v1, _ = two_versions
    client.force_login(author)
    page = client.get(v1.get_absolute_url()).content.decode()
    assert "Restore as new version" in page and reverse("constitutions:restore", args=[v1.constitution_id, 1]) in page


def test_version_by_id_redirects_to_the_version_page(client, viewer, two_versions):
    _, v2 = two_versions
    client.force_login(viewer)
    response = client.get(reverse("constitutions:version_by_id", args=[v2.pk]))
    assert response.status_code == 302 and response["Location"] == f"/constitutions/{v2.constitution_id}/v2/"


def test_version_page_shows_runs_that_pin_it(client, viewer):
    run = factories.make_run(name="pinned run")
    client.force_login(viewer)
    page = client.get(run.constitution_version.get_absolute_url()).content.decode()
    assert "pinned run" in page and "can never be deleted" in page


def test_history_counts_the_runs_that_pin_each_version(client, viewer):
    run = factories.make_run()
    factories.make_run(constitution_version=run.constitution_version)
    client.force_login(viewer)
    response = client.get(reverse("constitutions:history", args=[run.constitution_version.constitution_id]))
    (row,) = response.context["versions"]
    assert row.n_pins == 2


def test_missing_version_is_404(client, viewer, two_versions):
    client.force_login(viewer)
    assert client.get(reverse("constitutions:version", args=[two_versions[0].constitution_id, 9])).status_code == 404


def test_history_links_each_version_to_its_principles(client, viewer, two_versions):
    v1, v2 = two_versions
    client.force_login(viewer)
    response = client.get(reverse("constitutions:history", args=[v1.constitution_id]))
    page = response.content.decode()
    assert f'{v1.get_absolute_url()}#principles' in page and f'{v2.get_absolute_url()}#principles' in page
    rows = {v.number: v for v in response.context["versions"]}
    assert (rows[1].n_principles, rows[2].n_principles) == (2, 3)
    assert rows[2].author == v2.author and rows[2].note == "tighter"


def test_diff_shows_changes_side_by_side(client, viewer, two_versions):
    v1, v2 = two_versions
    client.force_login(viewer)
    response = client.get(reverse("constitutions:diff", args=[v1.constitution_id]), {"a": 1, "b": 2})
    page = response.content.decode()
    assert response.status_code == 200 and 'class="diff"' in page
    assert (response.context["old"], response.context["new"]) == (v1, v2)
    assert 'weight&nbsp;<span class="diff_chg">3</span>' in page  # Helpful's weight 1 -> 3
    assert '<span class="diff_add">*&nbsp;Brief&nbsp;&nbsp;[style,&nbsp;weight&nbsp;1,&nbsp;enabled]</span>' in page
    # defaults: the latest against the one before
    assert client.get(reverse("constitutions:diff", args=[v1.constitution_id])).context["old"] == v1


def test_pages_escape_user_text(client, author):
    v1 = factories.make_version(
        Constitution.objects.create(name=f"Name {XSS}", description=XSS),
        principles=[factories.principle(f"P {XSS}", comparison=XSS, critique_request=XSS)],
        note=XSS, few_shot_examples=[{"prompt": XSS, "response_a": XSS, "response_b": "b", "preferred": "A",
                                      "rationale": XSS}],
    )
    v2, _ = ConstitutionVersion.objects.create_version(
        v1.constitution, author=author, principles=[factories.principle(f"Q {XSS}", comparison=XSS)])
    client.force_login(author)
    c = v1.constitution
    urls = [reverse("constitutions:list"), v1.get_absolute_url(), reverse("constitutions:history", args=[c.pk]),
            reverse("constitutions:diff", args=[c.pk]) + "?a=1&b=2", reverse("constitutions:edit", args=[c.pk]),
            reverse("constitutions:preview", args=[c.pk, 1]), reverse("constitutions:fork", args=[c.pk])]
    for url in urls:
        page = client.get(url).content.decode()
        assert XSS not in page, url
        assert "&lt;script&gt;" in page, url
