"""Run.uid and PromptSet.uid: unique across databases, so that runs of two databases sharing a Redis or a
STUDIO_DATA_DIR never share an RQ job id or an artifacts folder. Existing rows get a fresh uuid each (the
three steps Django documents for adding a unique field to a table with rows)."""

import uuid

from django.db import migrations, models

HELP = ("Unique across databases: names the row's RQ jobs and artifact folders, so two databases that share "
        "a Redis or a STUDIO_DATA_DIR never mix them up.")


def fill_uids(apps, schema_editor):
    for model_name in ("Run", "PromptSet"):
        model = apps.get_model("runs", model_name)
        rows = list(model.objects.filter(uid__isnull=True).only("pk"))
        for row in rows:
            row.uid = uuid.uuid4()
        model.objects.bulk_update(rows, ["uid"], batch_size=500)


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0003_judge_cache'),
    ]

    operations = [
        migrations.AddField(model_name='run', name='uid', field=models.UUIDField(null=True, editable=False)),
        migrations.AddField(model_name='promptset', name='uid', field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(fill_uids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='run', name='uid',
            field=models.UUIDField(default=uuid.uuid4, editable=False, help_text=HELP, unique=True),
        ),
        migrations.AlterField(
            model_name='promptset', name='uid',
            field=models.UUIDField(default=uuid.uuid4, editable=False, help_text=HELP, unique=True),
        ),
    ]
