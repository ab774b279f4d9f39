"""Constitution authoring at scale: a constitution of N principles (default 200) with critique and revision
requests and few-shot examples. Prints milliseconds for saving a version, YAML/JSON export and import
(parse + validate), the side-by-side diff of two versions, and the editor page (GET, and a POST that saves
one changed principle) through Django's test client.

Usage::

    python benchmarks/constitution_pages.py [--n 200] [--repeat 5]

Uses a fresh SQLite database in a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _setup_django() -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ["STUDIO_DATA_DIR"] = tempfile.mkdtemp(prefix="constitution-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="principles in the constitution")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    _setup_django()

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment, teardown_test_environment
    from django.urls import reverse

    from constitutions import io
    from constitutions.diff import version_diff
    from constitutions.models import Constitution, ConstitutionVersion
    from runs.starter import ensure_starter_data

    ensure_starter_data()
    user = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    principles = [
        {"name": f"Principle {i}", "comparison": f"Which response better follows rule {i}? " + "detail " * 20,
         "critique_request": f"Critique against rule {i}.\nBe specific.", "revision_request": f"Revise for rule {i}.",
         "weight": 1.0 + i % 3, "category": "custom", "enabled": i % 7 != 0}
        for i in range(args.n)
    ]
    examples = [{"prompt": f"Q{i}?", "response_a": "a " * 50, "response_b": "b " * 50, "preferred": "A",
                 "rationale": "Because."} for i in range(5)]
    constitution = Constitution.objects.create(name="Bench")
    counter = iter(range(10**6))

    def save_version():
        changed = [dict(p) for p in principles]
        changed[0]["comparison"] += str(next(counter))
        ConstitutionVersion.objects.create_version(constitution, author=user, principles=changed,
                                                   few_shot_examples=examples)

    figures = {"save a version": _ms(save_version, args.repeat)}
    versions = list(constitution.versions.order_by("number"))
    old, new = versions[0], versions[-1]
    for fmt in io.FORMATS:
        text = io.dumps(new, fmt)
        figures[f"export {fmt} ({len(text) // 1024} KiB)"] = _ms(lambda fmt=fmt: io.dumps(new, fmt), args.repeat)
        figures[f"import {fmt}: parse + validate"] = _ms(lambda text=text, fmt=fmt: io.loads(text, fmt), args.repeat)
    figures["diff of two versions"] = _ms(lambda: version_diff(old, new), args.repeat)

    client = Client()
    client.force_login(user)
    url = reverse("constitutions:edit", args=[constitution.pk])
    setup_test_environment()  # the test client records template contexts: read the editor's initial data
    editor = client.get(url).context["editor"]
    teardown_test_environment()  # ...and stops recording (it slows rendering) before timing
    figures["editor page GET"] = _ms(lambda: client.get(url), args.repeat)
    data = {"name": "Bench", "description": "", "note": "", "judge_template": editor.content.initial["judge_template"]}
    for prefix, formset in (("principles", editor.principles), ("examples", editor.examples)):
        data.update({f"{prefix}-{k}": v for k, v in formset.management_form.initial.items()})
        for i, form in enumerate(formset.forms):
            for name in form.fields:
                value = form[name].value()
                if name == "enabled":
                    if value:
                        data[f"{prefix}-{i}-enabled"] = "on"
                elif value is not None:
                    data[f"{prefix}-{i}-{name}"] = str(value)

    def post_edit():
        data["base_version"] = str(constitution.latest_version.number)
        data["principles-0-comparison"] = f"Which response is better? {next(counter)}"
        response = client.post(url, data)
        assert response.status_code == 302, response.content[:2000]

    figures["editor POST (saves a version)"] = _ms(post_edit, args.repeat)
    print(f"Constitution of {args.n} principles, {len(examples)} examples; median of {args.repeat} runs")
    for label, ms in figures.items():
        print(f"  {label:<36} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
