import pytest
from django.db import IntegrityError, transaction

from constitutions.models import ConstitutionVersion, ImmutableError, Principle, VersionConflict
from tests import factories
from training.judge_prompt import TemplateError

pytestmark = pytest.mark.django_db


def test_versions_number_consecutively_and_record_parent(author):
    v1 = factories.make_version(author=author)
    v2, created = ConstitutionVersion.objects.create_version(
        v1.constitution, author=author, principles=[factories.principle("Concise")], note="shorter"
    )
    assert created and (v1.number, v2.number) == (1, 2)
    assert v2.parent == v1 and v2.note == "shorter" and v2.author == author
    assert [p.name for p in v2.principles.all()] == ["Concise"]
    assert v1.content_hash != v2.content_hash and len(v2.content_hash) == 64


def test_saving_unchanged_content_creates_nothing(author):
    v1 = factories.make_version(author=author)
    again, created = ConstitutionVersion.objects.create_version(
        v1.constitution, author=author, principles=v1.principle_dicts()
    )
    assert not created and again == v1
    assert ConstitutionVersion.objects.filter(constitution=v1.constitution).count() == 1


def test_saved_version_and_principles_are_immutable():
    version = factories.make_version()
    version.note = "changed"
    with pytest.raises(ImmutableError):
        version.save()
    principle = version.principles.first()
    principle.weight = 5
    with pytest.raises(ImmutableError):
        principle.save()


def test_stale_edit_is_refused_with_the_latest_version(author):
    v1 = factories.make_version(author=author)
    v2, _ = ConstitutionVersion.objects.create_version(
        v1.constitution, author=author, principles=[factories.principle("A")]
    )
    with pytest.raises(VersionConflict) as info:
        ConstitutionVersion.objects.create_version(
            v1.constitution, author=author, principles=[factories.principle("B")], base_version=v1, check_conflict=True
        )
    assert info.value.latest == v2


def test_version_pinned_by_a_run_cannot_be_deleted():
    run = factories.make_run()
    with pytest.raises(ImmutableError, match="pinned"):
        run.constitution_version.delete()


def test_unpinned_version_can_be_deleted():
    version = factories.make_version()
    version.delete()
    assert not ConstitutionVersion.objects.filter(pk=version.pk).exists()


def test_negative_weight_is_rejected_by_the_database():
    version = factories.make_version()
    with pytest.raises(IntegrityError), transaction.atomic():
        Principle.objects.create(version=version, position=9, name="x", comparison="?", weight=-1)


def test_template_with_unknown_placeholder_is_rejected():
    with pytest.raises(TemplateError) as info:
        factories.make_version(
            judge_template="{principle} {conversation} {response_a} {response_b} {answer_format} {tone}"
        )
    assert info.value.unknown == ["tone"]


def test_crlf_line_ends_from_a_browser_do_not_make_a_new_version(author):
    v1 = factories.make_version(author=author)
    template = v1.judge_template.replace("\n", "\r\n")
    principles = [{**p, "comparison": p["comparison"] + "\r\nBe strict."} for p in v1.principle_dicts()]
    v2, created = ConstitutionVersion.objects.create_version(v1.constitution, author=author, principles=principles,
                                                             judge_template=template)
    assert created and "\r" not in v2.judge_template and v2.judge_template == v1.judge_template
    again, created = ConstitutionVersion.objects.create_version(
        v1.constitution, author=author, principles=principles, judge_template=template
    )
    assert not created and again == v2
