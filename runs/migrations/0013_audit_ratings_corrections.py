"""Labels beyond A/B (issue 18): an audit plan may collect a 1-5 rating per enabled principle of each response
(ResponseRating) and a corrected response (CorrectedResponse), both part of the auditor's label."""

import django.db.models.deletion
import rlaif_site.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('constitutions', '0003_allow_ties'),
        ('runs', '0012_merge_judge_panel_team_audit'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditplan',
            name='collect_corrections',
            field=models.BooleanField(default=False, help_text='Auditors may also rewrite the better response (optional for them): exported as SFT demonstrations and as preference pairs over the worse response.'),
        ),
        migrations.AddField(
            model_name='auditplan',
            name='collect_ratings',
            field=models.BooleanField(default=False, help_text='Auditors may also rate each response from 1 to 5 under every enabled principle (optional for them).'),
        ),
        migrations.CreateModel(
            name='CorrectedResponse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rewrites', rlaif_site.fields.NulFreeCharField(choices=[('A', 'A'), ('B', 'B')], help_text='The response rewritten: the one the auditor preferred (the other is worse).', max_length=1)),
                ('text', rlaif_site.fields.NulFreeTextField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('label', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='correction', to='runs.humanlabel')),
            ],
        ),
        migrations.CreateModel(
            name='ResponseRating',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('side', rlaif_site.fields.NulFreeCharField(choices=[('A', 'A'), ('B', 'B')], max_length=1)),
                ('score', models.PositiveSmallIntegerField(help_text='1 (poor) to 5 (excellent).')),
                ('label', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ratings', to='runs.humanlabel')),
                ('principle', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='constitutions.principle')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('label', 'principle', 'side'), name='one_rating_per_principle_and_side'), models.CheckConstraint(condition=models.Q(('score__gte', 1), ('score__lte', 5)), name='rating_from_1_to_5')],
            },
        ),
    ]
