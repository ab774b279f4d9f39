import pytest
from django.urls import reverse

from constitutions.models import Constitution, ConstitutionVersion
from tests import factories
from tests.constitutions.editor_posts import editor_post

pytestmark = pytest.mark.django_db

P = [factories.principle("Honest"), factories.principle("Helpful", category="helpfulness", weight=2.0),
     factories.principle("Brief", category="style", enabled=False, critique_request="Too long?")]


def _names(version):
    return [p.name for p in version.principles.order_by("position")]


def test_create_saves_version_one_in_the_given_order(client, author):
    client.force_login(author)
    form_page = client.get(reverse("constitutions:create"))
    assert form_page.status_code == 200 and 'id="principles-template"' in form_page.content.decode()
    response = client.post(reverse("constitutions:create"), editor_post(
        "Mine", P, order=[2, 3, 1], description="about",
        examples=[{"prompt": "2+2?", "response_a": "4", "response_b": "5", "preferred": "A", "rationale": "math"}]))
    constitution = Constitution.objects.get(name="Mine")
    version = constitution.latest_version
    assert response.status_code == 302 and response["Location"] == version.get_absolute_url()
    assert version.number == 1 and version.author == author and version.note == "First version"
    assert _names(version) == ["Brief", "Honest", "Helpful"]
    brief = version.principles.get(name="Brief")
    assert (brief.enabled, brief.category, brief.critique_request) == (False, "style", "Too long?")
    assert version.principles.get(name="Helpful").weight == 2.0
    assert version.few_shot_examples == [
        {"prompt": "2+2?", "response_a": "4", "response_b": "5", "preferred": "A", "rationale": "math"}]
    assert constitution.created_by == author and constitution.description == "about"


def test_blank_added_principle_is_ignored_and_an_empty_list_is_refused(client, author):
    client.force_login(author)
    data = editor_post("Blanks", P[:1] + [{"name": "", "comparison": ""}])
    data.update({"principles-1-weight": "1.0", "principles-1-category": "custom"})  # what an untouched new form posts
    client.post(reverse("constitutions:create"), data)
    assert _names(Constitution.objects.get(name="Blanks").latest_version) == ["Honest"]
    response = client.post(reverse("constitutions:create"), editor_post("Empty", P, delete=(0, 1, 2)))
    assert response.status_code == 200 and "At least one principle is needed." in response.content.decode()
    assert not Constitution.objects.filter(name="Empty").exists()


@pytest.mark.parametrize("field, value, message", [
    ("principles-0-weight", "-1", "Ensure this value is greater than or equal to 0."),
    ("principles-0-name", "", "This field is required."),
    ("principles-1-name", "honest", "&#x27;honest&#x27; is already the name of principle 1"),
    ("principles-0-category", "tone", "Select a valid choice."),
])
def test_invalid_principles_are_refused_next_to_the_field(client, author, field, value, message):
    client.force_login(author)
    data = editor_post("Bad", P)
    data[field] = value
    response = client.post(reverse("constitutions:create"), data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not Constitution.objects.filter(name="Bad").exists()


def test_template_placeholders_are_checked_by_name(client, author):
    client.force_login(author)
    data = editor_post("Tpl", P, template="{principle} {conversation} {response_a} {response_b} {tone}")
    page = client.post(reverse("constitutions:create"), data).content.decode()
    assert "Unknown placeholder(s): {tone}; missing placeholder(s): {answer_format}." in page
    assert not Constitution.objects.filter(name="Tpl").exists()


def test_edit_reorders_removes_and_saves_a_new_version(client, author):
    v1 = factories.make_version(Constitution.objects.create(name="Edit me"), principles=P, author=author)
    client.force_login(author)
    page = client.get(reverse("constitutions:edit", args=[v1.constitution_id])).content.decode()
    assert 'name="base_version" value="1"' in page and 'value="Brief"' in page
    response = client.post(reverse("constitutions:edit", args=[v1.constitution_id]),
                           editor_post("Edit me", P, base=1, order=[3, 1, 2], delete=(2,), note="reordered"))
    v2 = v1.constitution.latest_version
    assert response.status_code == 302 and response["Location"] == v2.get_absolute_url()
    assert (v2.number, v2.parent, v2.note, v2.author) == (2, v1, "reordered", author)
    assert _names(v2) == ["Helpful", "Honest"] and _names(v1) == ["Honest", "Helpful", "Brief"]


def test_saving_an_unchanged_form_creates_nothing(client, author):
    v1 = factories.make_version(Constitution.objects.create(name="Same"), principles=P, author=author)
    client.force_login(author)
    response = client.post(reverse("constitutions:edit", args=[v1.constitution_id]),
                           editor_post("Same", P, base=1), follow=True)
    assert ConstitutionVersion.objects.filter(constitution=v1.constitution).count() == 1
    assert "Nothing changed; no new version was created" in response.content.decode()
    response = client.post(reverse("constitutions:edit", args=[v1.constitution_id]),
                           editor_post("Same but renamed", P, base=1), follow=True)
    assert ConstitutionVersion.objects.filter(constitution=v1.constitution).count() == 1
    assert Constitution.objects.get(pk=v1.constitution_id).name == "Same but renamed"
    assert "the content is unchanged, so no new version was created" in response.content.decode()


def test_stale_edit_is_refused_keeps_the_text_and_links_the_diff(client, author):
    v1 = factories.make_version(Constitution.objects.create(name="Shared"), principles=P, author=author)
    other = factories.make_user("bob", roles=("authors",))
    ConstitutionVersion.objects.create_version(v1.constitution, author=other, principles=P[:2], note="bob's")
    client.force_login(author)
    mine = [dict(P[0], comparison="Which response is more honest, precisely?"), P[1], P[2]]
    url = reverse("constitutions:edit", args=[v1.constitution_id])
    response = client.post(url, editor_post("Shared, renamed", mine, base=1, note="my note"))
    page = response.content.decode()
    assert response.status_code == 409
    assert "Version 2 was saved by bob" in page and "Your text is kept below" in page
    assert "Which response is more honest, precisely?" in page and 'value="my note"' in page
    assert 'value="Shared, renamed"' in page
    assert f'{reverse("constitutions:diff", args=[v1.constitution_id])}?a=1&amp;b=2' in page
    assert ConstitutionVersion.objects.filter(constitution=v1.constitution).count() == 2
    assert Constitution.objects.get(pk=v1.constitution_id).name == "Shared"  # nothing saved, not even the name

    data = editor_post("Shared, renamed", mine, base=1, note="my note")
    data["rebase"] = "2"
    response = client.post(url, data)
    v3 = v1.constitution.latest_version
    assert response.status_code == 302 and v3.number == 3 and v3.parent.number == 2
    assert v3.principles.get(name="Honest").comparison == "Which response is more honest, precisely?"


def test_archived_constitution_is_not_editable(client, author):
    v1 = factories.make_version(Constitution.objects.create(name="Done", archived=True), principles=P)
    client.force_login(author)
    response = client.post(reverse("constitutions:edit", args=[v1.constitution_id]), editor_post("Done", P[:1], base=1))
    assert response.status_code == 302 and v1.constitution.versions.count() == 1


def test_fork_copies_a_version_into_a_new_constitution(client, author):
    v1 = factories.make_version(Constitution.objects.create(name="Origin", description="d"), principles=P,
                                few_shot_examples=[{"prompt": "p", "response_a": "a", "response_b": "b",
                                                    "preferred": "B", "rationale": ""}])
    ConstitutionVersion.objects.create_version(v1.constitution, author=author, principles=P[:1])
    client.force_login(author)
    url = reverse("constitutions:fork", args=[v1.constitution_id])
    assert 'value="Origin (fork)"' in client.get(url).content.decode()
    assert "already exists" in client.post(url, {"name": "Origin", "version": "1"}).content.decode()
    response = client.post(url, {"name": "Mine", "version": "1"})
    fork = Constitution.objects.get(name="Mine")
    assert response.status_code == 302 and response["Location"] == reverse("constitutions:edit", args=[fork.pk])
    copy = fork.latest_version
    assert copy.number == 1 and copy.content_hash == v1.content_hash and copy.note == "Forked from Origin v1"
    assert fork.description == "d" and fork.created_by == author and _names(copy) == _names(v1)


def test_archive_and_restore(client, author):
    c = factories.make_version(Constitution.objects.create(name="Shelf")).constitution
    client.force_login(author)
    assert client.get(reverse("constitutions:archive", args=[c.pk])).status_code == 405
    client.post(reverse("constitutions:archive", args=[c.pk]))
    c.refresh_from_db()
    assert c.archived
    assert c not in client.get(reverse("constitutions:list")).context["constitutions"]
    client.post(reverse("constitutions:unarchive", args=[c.pk]))
    c.refresh_from_db()
    assert not c.archived


def test_restore_old_version_as_the_newest(client, author):
    v1 = factories.make_version(Constitution.objects.create(name="Back"), principles=P)
    ConstitutionVersion.objects.create_version(v1.constitution, author=author, principles=P[:1])
    client.force_login(author)
    response = client.post(reverse("constitutions:restore", args=[v1.constitution_id, 1]))
    v3 = v1.constitution.latest_version
    assert response.status_code == 302 and response["Location"] == v3.get_absolute_url()
    assert v3.number == 3 and v3.content_hash == v1.content_hash and v3.note == "Restored from v1"
    response = client.post(reverse("constitutions:restore", args=[v1.constitution_id, 1]), follow=True)
    assert v1.constitution.versions.count() == 3 and "nothing to restore" in response.content.decode()


ACTIONS = [
    ("get", "create", []), ("post", "create", []), ("get", "edit", ["pk"]), ("post", "edit", ["pk"]),
    ("get", "fork", ["pk"]), ("post", "fork", ["pk"]), ("post", "archive", ["pk"]), ("post", "unarchive", ["pk"]),
    ("post", "restore", ["pk", 1]), ("get", "import", []), ("post", "import", []),
]


def test_only_authors_change_constitutions(client, viewer, operator):
    version = factories.make_version()
    data = {"name": "x", "text": "name: x\nprinciples:\n- {name: a, comparison: b}\n"}
    for method, name, args in ACTIONS:
        url = reverse(f"constitutions:{name}", args=[version.constitution_id if a == "pk" else a for a in args])
        for user in (viewer, operator):
            client.force_login(user)
            assert getattr(client, method)(url, data if method == "post" else {}).status_code == 403, (method, url)
    assert Constitution.objects.count() == 1 and ConstitutionVersion.objects.count() == 1
    assert not Constitution.objects.get().archived


def test_everyone_logged_in_reads(client, viewer):
    version = factories.make_version()
    client.force_login(viewer)
    c = version.constitution_id
    for url in (reverse("constitutions:list"), reverse("constitutions:detail", args=[c]), version.get_absolute_url(),
                reverse("constitutions:history", args=[c]), reverse("constitutions:diff", args=[c]),
                reverse("constitutions:preview", args=[c, 1]), reverse("constitutions:export", args=[c, 1, "json"])):
        assert client.get(url).status_code == 200, url


def test_starter_constitution_opens_in_the_editor_and_saves_unchanged_as_nothing(client, author):
    from constitutions.starter import ensure_starter_constitution

    constitution, _ = ensure_starter_constitution()
    client.force_login(author)
    form = client.get(reverse("constitutions:edit", args=[constitution.pk])).context["editor"]
    data = {"name": constitution.name, "description": constitution.description, "base_version": "1", "note": "",
            "judge_template": form.content.initial["judge_template"]}
    data.update({f"principles-{k}": v for k, v in form.principles.management_form.initial.items()})
    data.update({f"examples-{k}": v for k, v in form.examples.management_form.initial.items()})
    for i, f in enumerate(form.principles.forms):
        for name in f.fields:
            value = f[name].value()
            if name == "enabled":
                if value:
                    data[f"principles-{i}-enabled"] = "on"
            elif value is not None:
                data[f"principles-{i}-{name}"] = str(value)
    response = client.post(reverse("constitutions:edit", args=[constitution.pk]), data)
    assert response.status_code == 302 and constitution.versions.count() == 1


def test_examples_must_have_text_and_a_verdict(client, author):
    client.force_login(author)
    data = editor_post("Ex", P, examples=[{"prompt": "   ", "response_a": "a", "response_b": "b", "preferred": "A"}])
    page = client.post(reverse("constitutions:create"), data).content.decode()
    assert "Is required and must be non-empty text." in page and not Constitution.objects.filter(name="Ex").exists()
    data["examples-0-preferred"] = "C"
    assert "Select a valid choice." in client.post(reverse("constitutions:create"), data).content.decode()


def test_a_long_constitution_fits_in_one_form(client, author):
    client.force_login(author)
    many = [factories.principle(f"Rule {i}") for i in range(150)]  # ~1,350 posted fields
    response = client.post(reverse("constitutions:create"), editor_post("Long", many))
    assert response.status_code == 302
    assert Constitution.objects.get(name="Long").latest_version.principles.count() == 150
