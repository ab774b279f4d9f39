"""StudioCallback: a real tiny ``Trainer`` run logs into a live test server as an external run (metrics per
step, config, checkpoint paths), and the run page shows it; a cancel on the site stops training."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainingArguments,
)

from rlaif_site.models import ApiToken
from runs import services
from runs.models import Artifact, MetricPoint, Run, RunStatus, StageStatus
from tests import factories
from tests.training.tiny import CORPUS, tiny_lm
from training.integrations.studio_callback import StudioCallback, StudioError

pytestmark = pytest.mark.slow

MAX_STEPS = 6


class _Texts(torch.utils.data.Dataset):
    def __init__(self, tokenizer):
        self.items = [tokenizer(text, truncation=True, max_length=48)["input_ids"] for text in CORPUS[:24]]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        ids = torch.tensor(self.items[i])
        return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}


def _trainer(tmp_path, callback, max_steps=MAX_STEPS):
    model_dir = tiny_lm(tmp_path / "lm")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=max_steps, per_device_train_batch_size=1, logging_steps=1,
        save_steps=3, save_strategy="steps", learning_rate=1e-3, report_to=[], use_cpu=True, seed=0,
        run_name="tiny-external", disable_tqdm=True,
    )
    return Trainer(model=model, args=args, train_dataset=_Texts(tokenizer), callbacks=[callback])


def test_a_tiny_trainer_run_logs_into_an_external_run(live_server, tmp_path, client):
    user = factories.make_user("mlops", roles=("operators",))
    _, token = ApiToken.issue(user, "cluster")
    callback = StudioCallback(live_server.url, token=token, flush_every=4, strict=True,
                              config={"dataset": "tiny corpus"})
    _trainer(tmp_path, callback).train()

    run = Run.objects.get(pk=callback.run_id)
    assert run.kind == "external" and run.owner == user and run.status == RunStatus.SUCCEEDED
    assert run.constitution_version is None and run.prompt_set is None
    assert run.config["training_arguments"]["max_steps"] == MAX_STEPS
    assert run.config["training_arguments"]["learning_rate"] == pytest.approx(1e-3)
    assert run.config["model"]["config"]["n_layer"] == 2
    assert run.config["dataset"] == "tiny corpus"
    # one loss point per step, all finite, under the policy stage (so they share the product runs' panels)
    losses = list(MetricPoint.objects.filter(run=run, name="loss").order_by("step").values_list("step", "value"))
    assert [step for step, _ in losses] == list(range(1, MAX_STEPS + 1))
    assert all(math.isfinite(v) and v > 0 for _, v in losses)
    assert set(MetricPoint.objects.filter(run=run).values_list("stage", flat=True)) == {"policy"}
    assert MetricPoint.objects.filter(run=run, name="train_loss").exists()  # the summary at the end
    stage = run.stages.get()
    assert stage.status == StageStatus.SUCCEEDED and stage.progress_done == MAX_STEPS
    assert stage.progress_total == MAX_STEPS
    paths = dict(Artifact.objects.filter(run=run).values_list("name", "path"))
    assert paths["checkpoint-3"] == str(tmp_path / "out" / "checkpoint-3")
    assert paths["checkpoint-6"] == str(tmp_path / "out" / "checkpoint-6")
    assert paths["output_dir"] == str(tmp_path / "out")

    # the same run page as product runs: kind shown, curves in the policy loss panel, artifacts listed
    client.force_login(user)
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200
    assert b"External script" in page.content and b"checkpoint-3" in page.content
    assert b"Browse pairs" not in page.content
    charts = client.get(f"/runs/{run.pk}/charts.json").json()
    panel = next(p for p in charts["panels"] if p["id"] == "policy_loss")
    assert len(panel["figure"]["data"][0]["x"]) == MAX_STEPS


def test_a_cancel_on_the_site_stops_training_at_the_next_batch(live_server, tmp_path):
    user = factories.make_user("mlops2", roles=("operators",))
    _, token = ApiToken.issue(user, "cluster")
    callback = StudioCallback(live_server.url, token=token, flush_every=1, strict=True)
    trainer = _trainer(tmp_path, callback, max_steps=50)

    class CancelOnTheSiteAtStep2(TrainerCallback):
        """What an operator's cancel on the run page does, at step 2."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                services.cancel_run(Run.objects.get(pk=callback.run_id))

    trainer.add_callback(CancelOnTheSiteAtStep2())
    trainer.train()
    run = Run.objects.get(pk=callback.run_id)
    assert run.status == RunStatus.CANCELLED
    assert trainer.state.global_step < 5  # stopped within a step or two of the cancel, not after 50


def test_points_keep_finite_numbers_only_and_a_refusal_is_an_error_when_strict(live_server):
    points = StudioCallback.points_from_logs(4, {"loss": 1.5, "grad_norm": float("nan"), "epoch": 1, "flag": True,
                                                 "note": "x", "lr": float("inf")})
    assert points == [{"step": 4, "name": "loss", "value": 1.5}, {"step": 4, "name": "epoch", "value": 1.0}]
    callback = StudioCallback(live_server.url, token="rls_not-a-real-token", strict=True)
    args = TrainingArguments(output_dir="unused", report_to=[])
    state = type("S", (), {"max_steps": 3})()
    with pytest.raises(StudioError, match="HTTP 401"):
        callback.on_train_begin(args, state, TrainerControl())
    with pytest.raises(ValueError, match="stage"):
        StudioCallback(live_server.url, token="rls_x", stage="label")
