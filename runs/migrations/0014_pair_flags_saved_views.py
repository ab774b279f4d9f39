"""Pair browser (issue 18): flags on pairs, saved views per user and run, and the audit sample's stratum of pairs
chosen from the pair browser."""

import django.db.models.deletion
import rlaif_site.fields
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0013_audit_ratings_corrections'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='audititem',
            name='stratum',
            field=rlaif_site.fields.NulFreeCharField(choices=[('random', 'Uniform random'), ('uncertain', 'Uncertain'), ('disagree', 'Judges disagree'), ('chosen', 'Chosen from the pair browser')], max_length=10),
        ),
        migrations.CreateModel(
            name='PairFlag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('note', rlaif_site.fields.NulFreeCharField(blank=True, max_length=200)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('comparison', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='flags', to='runs.comparison')),
                ('flagged_by', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('comparison', 'flagged_by'), name='one_pair_flag_per_user')],
            },
        ),
        migrations.CreateModel(
            name='SavedPairView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', rlaif_site.fields.NulFreeCharField(max_length=100)),
                ('query', rlaif_site.fields.NulFreeCharField(blank=True, help_text="The query string, without the leading '?'.", max_length=2000)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runs.run')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='saved_pair_views', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name'],
                'constraints': [models.UniqueConstraint(fields=('user', 'run', 'name'), name='one_saved_view_per_name')],
            },
        ),
    ]
