"""The run page says what the likelihood judge can and cannot judge, on runs that use it only."""
import pytest
from django.urls import reverse

from runs.presets import PRESETS
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_gemma_preset_run_page_states_the_judge_scope_and_a_demo_run_page_does_not(client, operator):
    client.force_login(operator)
    gemma = factories.make_run(owner=operator, config=PRESETS["gemma-cpu"].full_config())
    page = client.get(reverse("runs:detail", args=[gemma.pk])).content.decode()
    assert 'id="judge-scope"' in page
    assert "cannot check facts" in page and "alignment" in page
    demo = factories.make_run(owner=operator, config=PRESETS["offline-demo"].full_config())
    assert 'id="judge-scope"' not in client.get(reverse("runs:detail", args=[demo.pk])).content.decode()
