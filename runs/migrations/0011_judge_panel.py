"""A panel of judges (issue 19): a panel judge's vote (``Judgment.panel_vote``), whether a panel's judges agree
(``Judgment.judges_agree``), and the audit sample's "judges disagree" stratum."""

import rlaif_site.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0010_anchor_check'),
    ]

    operations = [
        migrations.AddField(
            model_name='judgment',
            name='judges_agree',
            field=models.BooleanField(blank=True, help_text="A panel's verdict: whether every judge gave the same verdict (None: one judge, or a vote failed).", null=True),
        ),
        migrations.AddField(
            model_name='judgment',
            name='panel_vote',
            field=models.BooleanField(default=False, help_text="A panel judge's vote, aggregated into its panel's verdict (not a verdict itself)."),
        ),
        migrations.AlterField(
            model_name='audititem',
            name='stratum',
            field=rlaif_site.fields.NulFreeCharField(choices=[('random', 'Uniform random'), ('uncertain', 'Uncertain'), ('disagree', 'Judges disagree')], max_length=10),
        ),
    ]
