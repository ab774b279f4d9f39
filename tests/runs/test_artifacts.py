"""Artifact downloads (a file as it is, a folder as a streamed zip, nothing outside the artifacts folder)
and lineage (what each artifact was made from)."""
import io
import zipfile

import pytest
from django.urls import reverse

from runs.artifact_files import lineage, zip_chunks
from runs.models import Artifact
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    return factories.make_run(stages=("reward_model", "policy", "evaluate"), config={"judge": {"model": "demo://judge"}})


def _model_folder(run, name="reward_model"):
    folder = run.artifacts_dir / name / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: several chunks
    (folder / "sub" / "tokenizer.json").write_text("{}")
    return folder


def test_folder_downloads_as_a_streamed_zip_with_every_file(client, viewer, run):
    folder = _model_folder(run)
    artifact = Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path=str(folder))
    client.force_login(viewer)
    response = client.get(reverse("runs:artifact_download", args=[run.pk, artifact.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert f'filename="run-{run.key}-reward_model-reward_model.zip"' in response["Content-Disposition"]
    chunks = list(response.streaming_content)
    assert len(chunks) > 2  # streamed in pieces, not built whole first
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert sorted(archive.namelist()) == ["model/config.json", "model/model.safetensors", "model/sub/tokenizer.json"]
    assert archive.read("model/model.safetensors") == bytes(range(256)) * 8192
    assert archive.getinfo("model/model.safetensors").compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("model/config.json").compress_type == zipfile.ZIP_DEFLATED
    assert archive.testzip() is None


def test_file_downloads_as_it_is(client, viewer, run):
    report = run.artifacts_dir / "evaluation" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text('{"win_rate": 0.6}')
    artifact = Artifact.objects.create(run=run, kind="report", name="evaluation", path=str(report))
    client.force_login(viewer)
    response = client.get(reverse("runs:artifact_download", args=[run.pk, artifact.pk]))
    assert b"".join(response.streaming_content) == b'{"win_rate": 0.6}'
    assert "attachment" in response["Content-Disposition"]


def test_paths_outside_the_artifacts_folder_or_gone_are_not_served(client, viewer, run, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours")
    outside = Artifact.objects.create(run=run, kind="report", name="x", path=str(secret))
    dotdot = Artifact.objects.create(run=run, kind="report", name="y", path=str(run.artifacts_dir / ".." / ".." /
                                                                               "outside.txt"))
    gone = Artifact.objects.create(run=run, kind="report", name="z", path=str(run.artifacts_dir / "nothing"))
    other_run = factories.make_run()
    client.force_login(viewer)
    for artifact in (outside, dotdot, gone):
        assert client.get(reverse("runs:artifact_download", args=[run.pk, artifact.pk])).status_code == 404
    assert client.get(reverse("runs:artifact_download", args=[other_run.pk, outside.pk])).status_code == 404
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert page.count("files gone") == 3


def test_symlinks_in_a_folder_are_left_out(run, tmp_path):
    folder = _model_folder(run)
    (tmp_path / "elsewhere.txt").write_text("secret")
    (folder / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_chunks(folder, "m"))))
    assert "m/link.txt" not in archive.namelist() and "m/config.json" in archive.namelist()


def test_lineage_links_reward_model_policy_and_evaluation(client, viewer, run):
    comparison = factories.make_comparison(run)
    factories.make_judgment(comparison)
    factories.make_judgment(comparison, verdict="", p_a=None, judge_id="j2")
    rm = Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path="/a/reward_model/model",
                                 metrics={"train_pairs": 40, "eval_pairs": 10, "human_pairs": 5,
                                          "base_model": "minilm"})
    policy = Artifact.objects.create(run=run, kind="policy", name="policy", path="/a/policy/model",
                                     metrics={"reference": "/models/demo/policy", "config": {"algorithm": "rloo"},
                                              "reward_model": "/a/reward_model/model"})
    report = Artifact.objects.create(run=run, kind="report", name="evaluation", path="/a/evaluation/report.json")
    links = lineage(run, [rm, policy, report])
    texts = {k: [item["text"] for item in v] for k, v in links.items()}
    assert texts[rm.pk] == ["trained on 40 AI preferences (+10 held out, 5 human-labelled)",
                            "from 1 decided of 2 judgments by demo://judge", "base minilm"]
    assert links[rm.pk][1]["href"] == reverse("runs:pairs", args=[run.pk])
    assert texts[policy.pk] == ["started from /models/demo/policy", "rloo against reward model model"]
    assert links[policy.pk][1]["href"] == f"#artifact-{rm.pk}"
    assert texts[report.pk][0] == "judged tuned policy model"
    assert links[report.pk][0]["href"] == f"#artifact-{policy.pk}"
    client.force_login(viewer)
    state = client.get(reverse("runs:progress", args=[run.pk]), {"counts": 1}).json()
    assert [a["lineage"] for a in state["artifacts"]] == [links[rm.pk], links[policy.pk], links[report.pk]]


def test_sample_table_shows_each_prompt_across_steps(client, viewer, run):
    import json

    from runs.views.artifacts import spread

    path = run.artifacts_dir / "policy" / "samples.jsonl"
    path.parent.mkdir(parents=True)
    records = [{"step": s, "when": w, "samples": [{"prompt": "Why <b>?", "response": f"answer at {s}"},
                                                  {"prompt": "P2", "response": ""}]}
               for s, w in ((0, "start"), (10, "checkpoint"), (20, "end"))]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    client.force_login(viewer)
    assert 'id="samples-link"' in client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    page = client.get(reverse("runs:samples", args=[run.pk])).content.decode()
    assert "Start (step 0)" in page and "Step 10" in page and "End (step 20)" in page
    assert page.index("answer at 0") < page.index("answer at 10") < page.index("answer at 20")
    assert "Why &lt;b&gt;?" in page and "(empty)" in page
    assert spread(list(range(20)), 8) == [0, 3, 5, 8, 11, 14, 16, 19]


def test_no_samples_yet_says_so(client, viewer, run):
    client.force_login(viewer)
    assert 'id="samples-link"' not in client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "No samples yet" in client.get(reverse("runs:samples", args=[run.pk])).content.decode()
