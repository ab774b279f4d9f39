import pytest
from django.urls import reverse

from constitutions import prompt_sources
from constitutions.models import Constitution
from runs.models import Prompt
from runs.prompt_content import content_hash
from tests import factories
from training.judge_prompt import ANSWER_FORMAT

pytestmark = pytest.mark.django_db

TEMPLATE = ("Principle: {principle}\n{examples}Conversation:\n{conversation}\n"
            "A: {response_a}\nB: {response_b}\n{answer_format}")


@pytest.fixture
def version():
    return factories.make_version(
        Constitution.objects.create(name="Preview me"),
        principles=[factories.principle("Off", enabled=False), factories.principle("Honest")],
        judge_template=TEMPLATE,
    )


def test_typed_prompt_renders_both_orders_exactly(client, viewer, version):
    client.force_login(viewer)
    url = reverse("constitutions:preview", args=[version.constitution_id, 1])
    page = client.get(url)
    assert page.context["form"]["principle"].value() == version.principles.get(name="Honest").pk
    honest = version.principles.get(name="Honest")
    response = client.post(url, {"prompt_text": "Is the sky <blue>?", "response_a": "Yes.", "response_b": "No.",
                                 "principle": honest.pk})
    (ab_label, _, ab), (ba_label, _, ba) = response.context["orders"]
    assert (ab_label, ba_label) == ("A/B", "B/A")
    assert ab.messages == ({"role": "user", "content": "Principle: Which response is more honest?\nConversation:\n"
                            f"Is the sky <blue>?\nA: Yes.\nB: No.\n{ANSWER_FORMAT}"},)
    assert ba.messages[0]["content"].endswith(f"A: No.\nB: Yes.\n{ANSWER_FORMAT}") and ba.swapped
    page = response.content.decode()
    assert "Is the sky &lt;blue&gt;?\nA: Yes.\nB: No." in page and "Is the sky &lt;blue&gt;?\nA: No.\nB: Yes." in page


def test_prompt_picked_from_a_set_renders_chat_messages(client, viewer, version):
    prompt_set = factories.make_prompt_set(2)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    chat = Prompt.objects.create(prompt_set=prompt_set, index=5, text="system: Be brief.\n\nuser: Hi?",
                                 messages=messages, content_hash=content_hash(messages))
    client.force_login(viewer)
    url = reverse("constitutions:preview", args=[version.constitution_id, 1])
    listing = client.post(url, {"prompt_set": prompt_set.pk, "reload": "1", "response_a": "kept"}).content.decode()
    assert f'<option value="{chat.pk}">#5: system: Be brief.' in listing and ">\nkept</textarea>" in listing
    response = client.post(url, {"prompt_set": prompt_set.pk, "prompt": chat.pk, "response_a": "Hello.",
                                 "response_b": "Hey", "principle": version.principles.get(name="Honest").pk})
    ab = response.context["orders"][0][2]
    assert "Conversation:\nSystem: Be brief.\n\nHuman: Hi?\nA: Hello.\nB: Hey\n" in ab.messages[0]["content"]


def test_preview_uses_the_versions_few_shot_examples(client, viewer):
    version = factories.make_version(
        judge_template=TEMPLATE, few_shot_examples=[{"prompt": "2+2?", "response_a": "4", "response_b": "5",
                                                     "preferred": "A", "rationale": "Arithmetic."}])
    client.force_login(viewer)
    response = client.post(reverse("constitutions:preview", args=[version.constitution_id, 1]), {
        "prompt_text": "x", "response_a": "a", "response_b": "b", "principle": version.principles.first().pk})
    content = response.context["orders"][1][2].messages[0]["content"]
    assert "Example 1\nConversation:\n2+2?\n\nResponse A:\n4\n\nResponse B:\n5\n\nArithmetic.\nPreferred: A" in content


@pytest.mark.parametrize("data, message", [
    ({"response_a": "a", "response_b": "b"}, "Type a prompt or pick one from a prompt set."),
    ({"prompt_text": "x", "response_a": "a"}, "This field is required."),
])
def test_incomplete_preview_is_explained(client, viewer, version, data, message):
    client.force_login(viewer)
    data["principle"] = version.principles.first().pk
    response = client.post(reverse("constitutions:preview", args=[version.constitution_id, 1]), data)
    assert response.context["orders"] is None and message in response.content.decode()


def test_principle_of_another_version_is_refused(client, viewer, version):
    other = factories.make_version()
    client.force_login(viewer)
    response = client.post(reverse("constitutions:preview", args=[version.constitution_id, 1]), {
        "prompt_text": "x", "response_a": "a", "response_b": "b", "principle": other.principles.first().pk})
    assert response.context["orders"] is None and "Select a valid choice" in response.content.decode()


def test_an_edited_template_can_be_tried_without_saving(client, viewer, version):
    client.force_login(viewer)
    url = reverse("constitutions:preview", args=[version.constitution_id, 1])
    data = {"prompt_text": "x", "response_a": "a", "response_b": "b", "principle": version.principles.last().pk,
            "judge_template": "Q: {principle}\n{conversation}|{response_a}|{response_b}|{answer_format}"}
    response = client.post(url, data)
    assert response.context["orders"][1][2].messages[0]["content"] == (
        f"Q: Which response is more honest?\nx|b|a|{ANSWER_FORMAT}")
    assert "Rendered with your edited template" in response.content.decode()
    version.refresh_from_db()
    assert version.judge_template == TEMPLATE
    data["judge_template"] = "{principle} {response_a} {response_b} {answer_format} {tone}"
    page = client.post(url, data).content.decode()
    assert "Unknown placeholder(s): {tone}; missing placeholder(s): {conversation}." in page


def test_without_a_prompt_source_only_a_typed_prompt_is_offered(client, viewer, version, monkeypatch):
    monkeypatch.setattr(prompt_sources, "_SOURCE", [])
    client.force_login(viewer)
    url = reverse("constitutions:preview", args=[version.constitution_id, 1])
    assert 'name="prompt_set"' not in client.get(url).content.decode()
    response = client.post(url, {"prompt_text": "x", "response_a": "a", "response_b": "b",
                                 "principle": version.principles.last().pk})
    assert response.context["orders"][0][2].messages[0]["content"].startswith("Principle: Which response")
