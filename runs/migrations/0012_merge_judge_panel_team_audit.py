"""Merges the two migrations made side by side on 0010: the judge panel and team auditing."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0011_judge_panel'),
        ('runs', '0011_team_audit'),
    ]

    operations = []
