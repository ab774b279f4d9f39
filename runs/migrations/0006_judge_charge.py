"""The judge cost ledger: one row per paid call (runs.models.JudgeCharge)."""

import django.db.models.deletion
from django.db import migrations, models

import runs.fields


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0005_nul_free_text_and_degenerate_pairs"),
    ]

    operations = [
        migrations.CreateModel(
            name="JudgeCharge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("judge_id", runs.fields.NulFreeCharField(max_length=300)),
                ("request_key", runs.fields.NulFreeCharField(help_text="The request's cache key.", max_length=64)),
                ("prompt_tokens", models.PositiveIntegerField(default=0)),
                ("completion_tokens", models.PositiveIntegerField(default=0)),
                ("cost", models.FloatField(default=0)),
                (
                    "outcome",
                    runs.fields.NulFreeCharField(help_text="answer, no verdict, truncated or estimated.", max_length=20),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="judge_charges", to="runs.run"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["run", "judge_id"], name="judge_charge_run_idx")],
            },
        ),
    ]
