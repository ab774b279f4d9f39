"""The judge-prompt preview: what the AI judge receives for one comparison, in both orders (A/B and B/A),
built by :func:`training.judge_prompt.render_both_orders` from a saved version's template and examples."""
from __future__ import annotations

from django.shortcuts import render

from constitutions.forms import PreviewForm
from constitutions.views.common import get_version
from training.judge_prompt import render_both_orders


def preview(request, pk: int, number: int):
    """GET: the form (``?principle=<id>``, ``?prompt_set=<id>`` preselect). POST: the two rendered prompts.
    A POST with ``reload`` only refreshes the prompt choices after another prompt set was picked."""
    version = get_version(pk, number)
    principles = version.principles.order_by("position")
    first_enabled = next((p for p in principles if p.enabled), principles.first())
    requests, template = None, version.judge_template
    if request.method == "POST" and "reload" not in request.POST:
        form = PreviewForm(request.POST, version=version)
        if form.is_valid():
            template = form.cleaned_data["judge_template"] if form.cleaned_data["judge_template"].strip() else template
            requests = render_both_orders(
                template, form.cleaned_data["principle"].comparison, form.conversation(),
                form.cleaned_data["response_a"], form.cleaned_data["response_b"], version.few_shot_examples,
            )
    else:
        source = request.POST if request.method == "POST" else request.GET
        initial = {"principle": first_enabled.pk if first_enabled else None, "judge_template": version.judge_template}
        initial.update({k: v for k, v in source.items() if k in PreviewForm.base_fields and k != "prompt"})
        form = PreviewForm(initial=initial, version=version)
    orders = None
    if requests is not None:
        orders = [("A/B", "the first response is shown as A", requests[0]),
                  ("B/A", "the responses are swapped: the first response is shown as B", requests[1])]
    context = {
        "constitution": version.constitution, "version": version, "form": form, "orders": orders,
        "template_edited": template != version.judge_template,
        "selected_prompt": str(form["prompt"].value() or "") if form.offers_prompt_sets else "",
        "selected_prompt_set": str(form["prompt_set"].value() or "") if form.offers_prompt_sets else "",
    }
    return render(request, "constitutions/preview.html", context)
