"""Auditing as a team (issue 18): audit plans (assignment, required overlap, guidelines), assignments,
adjudications, and the reviewers role group."""

import django.db.models.deletion
import django.utils.timezone
import rlaif_site.fields
from django.conf import settings
from django.db import migrations, models


def create_reviewers_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="reviewers")


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0010_anchor_check'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditPlan',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('mode', rlaif_site.fields.NulFreeCharField(choices=[('everyone', 'Every auditor labels every pair'), ('pooled', 'Pooled: any auditor, until each pair has its required labels'), ('assigned', 'Assigned to named auditors')], default='everyone', max_length=10)),
                ('overlap', models.PositiveSmallIntegerField(default=1, help_text='Auditors per pair (pooled and assigned modes): the required overlap.')),
                ('review_ai_disagreements', models.BooleanField(default=True, help_text='Also send pairs whose human majority differs from the AI verdict to review (pairs whose auditors disagree always go).')),
                ('guidelines', rlaif_site.fields.NulFreeTextField(blank=True, help_text='Markdown, shown beside each pair.')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('auditors', models.ManyToManyField(blank=True, help_text='The named auditors the sample is shared among (assigned mode).', related_name='audit_plans', to=settings.AUTH_USER_MODEL)),
                ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='audit_plan', to='runs.run')),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.CreateModel(
            name='Adjudication',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('choice', rlaif_site.fields.NulFreeCharField(choices=[('A', 'A'), ('B', 'B'), ('tie', 'Tie')], max_length=4)),
                ('note', rlaif_site.fields.NulFreeTextField(blank=True)),
                ('reason', rlaif_site.fields.NulFreeCharField(blank=True, choices=[('auditors', 'Auditors disagree'), ('ai', 'Human majority differs from the AI'), ('reviewer', "Reviewer's own choice")], max_length=10)),
                ('labels', rlaif_site.fields.NulFreeJSONField(blank=True, default=list, help_text='The labels the reviewer saw: [{annotator, choice, confidence, note}].')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('comparison', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='adjudications', to='runs.comparison')),
                ('reviewer', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['comparison', '-created_at', '-pk'],
                'indexes': [models.Index(fields=['comparison', '-created_at'], name='adjudication_latest_idx')],
            },
        ),
        migrations.CreateModel(
            name='AuditAssignment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('assigned_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('auditor', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audit_assignments', to=settings.AUTH_USER_MODEL)),
                ('item', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='runs.audititem')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('item', 'auditor'), name='one_assignment_per_auditor')],
            },
        ),
        migrations.RunPython(create_reviewers_group, migrations.RunPython.noop),
    ]
