"""Run a training stage in the worker's own process, or as ``accelerate launch`` with N processes.

A trained stage (``sft``, ``reward_model``, ``policy``) calls :func:`run_training` with its training function's
keyword arguments. With the section's ``launcher`` ``in_process`` (the default) that is a plain call of
:func:`training.sft.train_sft`, :func:`training.reward_model.train_reward_model` or
:func:`training.policy.train_policy`. With ``accelerate`` (:data:`training.config.LAUNCH_FIELDS`) the same call
runs in ``num_processes`` processes started by Hugging Face Accelerate's launcher (``accelerate launch``: DDP on
several GPUs, or DeepSpeed/FSDP as its config file says; on a CPU, gloo), and this process watches them:

* **Plain inputs.** The arguments are written under ``<output_dir>/launch/``: a JSON spec, datasets saved with
  ``datasets.Dataset.save_to_disk``, demonstrations and prompts as JSON; the reward function by name (a reward
  model folder, :class:`RewardModelRef`, or an importable ``module:function``). Each process reads them
  (``python -m training.launcher SPEC``), calls the training function, and the main process writes the plain
  result (``result.json``: the result dataclass as JSON, or the error, or the cancel).
* **Metrics and progress once.** Only the main process (rank 0) reports: it appends JSON lines to ``events.jsonl``
  (progress, metrics, log lines), which this process tails into the caller's reporter, so a step's metrics arrive
  once however many processes train.
* **Cancel.** When the caller's ``reporter.should_stop()`` turns True, this process creates the ``stop`` file. At
  the end of each step the main process looks for it and broadcasts its answer to every process (they must stop
  at the same step: a process that trains on alone would wait for the others forever), the trainer saves a
  checkpoint and every process returns; :func:`run_training` then raises :class:`training.progress.Cancelled`.
* **Kill and resume.** The launcher runs in its own process group and gets SIGTERM when the thread that started
  it dies (``PR_SET_PDEATHSIG``; the job runner's main thread), so a killed worker leaves no training behind; an
  exception here (a job timeout) ends the group too. Checkpoints are the trainer's own (``checkpoint-<step>`` every
  ``checkpoint_every`` steps), so the next attempt resumes from the last complete one exactly as in-process
  training does (:func:`training.checkpoints.train_resumable`).
* **Failure.** A process that fails ends the launch; :class:`TrainingProcessError` names the exit code, the
  error the main process caught (type and message), and the tail of the processes' output (stdout and stderr,
  kept whole in ``launch/output.log``).

:func:`launch_plan` checks everything before anything starts (fail early): the config file exists and parses,
the number of processes is at least 1, a GPU config has as many GPUs as processes, one machine only.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from training.progress import Cancelled, NullReporter, Reporter

#: The deployment's default accelerate config file (a section's ``accelerate_config`` overrides it).
CONFIG_ENV = "STUDIO_ACCELERATE_CONFIG"
#: CPU threads per training process (``accelerate launch --num_cpu_threads_per_process``), as for the worker.
THREADS_ENV = "STUDIO_TORCH_THREADS"
#: The folder under a stage's output folder that holds a launch's spec, inputs, events, result and output.
LAUNCH_DIR = "launch"
#: Lines of the processes' output kept for an error message.
OUTPUT_TAIL_LINES = 40
#: Seconds the launched processes get to end after SIGTERM before they are killed.
TERMINATE_GRACE_S = 15.0

#: Stage -> (module, training function, result class, config class) of the training functions a launch runs.
TRAINING_FUNCTIONS: dict[str, tuple[str, str, str, str]] = {
    "sft": ("training.sft", "train_sft", "SFTResult", "SFTConfig"),
    "reward_model": ("training.reward_model", "train_reward_model", "RewardModelResult", "RewardModelConfig"),
    "policy": ("training.policy", "train_policy", "PolicyResult", "PolicyConfig"),
}
#: Distributed types that train on GPUs (accelerate's ``distributed_type``), unless the config says ``use_cpu``.
GPU_TYPES = frozenset({"MULTI_GPU", "DEEPSPEED", "FSDP", "MEGATRON_LM"})
#: Distributed types accelerate starts through MPI only; on one machine without an MPI hostfile the launch adds
#: ``--multi_gpu``, which starts the N processes through torchrun (they use gloo on a CPU).
SINGLE_PROCESS_TYPES = frozenset({"NO", "MULTI_CPU"})


class LaunchError(ValueError):
    """A launch cannot start: a missing or unreadable accelerate config, too few processes or GPUs, several
    machines. ``path`` is the config field it belongs to (``policy.accelerate_config``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class TrainingProcessError(RuntimeError):
    """The launched training processes failed.

    Attributes:
        returncode: the launcher's exit code.
        error: ``{"type", "message", "traceback"}`` of the exception the main process caught, or None.
        output_tail: the last lines the processes printed (stdout and stderr together).
    """

    def __init__(self, message: str, *, returncode: int | None, error: dict | None, output_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.error = error
        self.output_tail = output_tail


@dataclass(frozen=True)
class LaunchPlan:
    """What :func:`launch_plan` settled: the config file (None: accelerate's default), the number of processes,
    accelerate's distributed type, and the ``accelerate launch`` options that follow from them."""

    config_file: str | None
    num_processes: int
    distributed_type: str
    options: tuple[str, ...]

    def describe(self) -> str:
        where = self.config_file or "accelerate's default config"
        return f"accelerate launch, {self.num_processes} process(es), {self.distributed_type} ({where})"


def launch_plan(
    section, stage: str, *, environ: Mapping[str, str] | None = None, count_gpus: bool = True
) -> LaunchPlan:
    """Check a stage section's launch fields on the machine that will train, before anything starts.

    Args:
        section: a stage config with :data:`training.config.LAUNCH_FIELDS`.
        stage: its name in the run config (``policy``), for messages.
        environ: the environment (default ``os.environ``), for ``STUDIO_ACCELERATE_CONFIG``.
        count_gpus: check that a GPU config has a GPU per process here (not at launch: the web server may have
            none; the stage checks again on its worker).

    Returns:
        The :class:`LaunchPlan`.

    Raises:
        LaunchError: the named config file does not exist or does not parse; the number of processes (the
            section's, else the file's) is below 1; the file asks for more than one machine; a GPU config asks
            for more processes than this machine has GPUs.
    """
    from accelerate.commands.config.config_args import default_config_file, load_config_from_file

    environ = os.environ if environ is None else environ
    named = section.accelerate_config.strip() or environ.get(CONFIG_ENV, "").strip()
    field = f"{stage}.accelerate_config"
    source = field if section.accelerate_config.strip() else CONFIG_ENV
    config_file = None
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise LaunchError(field, f"the accelerate config file {named} ({source}) does not exist on "
                                     f"{socket.gethostname()}")
        config_file = str(path.resolve())
    readable = config_file or (default_config_file if os.path.isfile(default_config_file) else None)
    cluster = None
    if readable:
        try:
            cluster = load_config_from_file(readable)
        except Exception as exc:  # noqa: BLE001 - YAML/JSON errors and unknown keys all mean "fix the file"
            raise LaunchError(field, f"the accelerate config file {readable} cannot be read: "
                                     f"{type(exc).__name__}: {exc}") from None
    distributed_type = str(getattr(getattr(cluster, "distributed_type", None), "value", None) or "NO")
    num_processes = section.num_processes or int(getattr(cluster, "num_processes", None) or 1)
    if num_processes < 1:
        raise LaunchError(f"{stage}.num_processes", f"must be at least 1 (the accelerate config file {readable} "
                                                    f"says {num_processes}); set it here or in the file")
    machines = int(getattr(cluster, "num_machines", None) or 1)
    if machines > 1:
        raise LaunchError(field, f"{readable} asks for {machines} machines: a stage launches its processes on the "
                                 "worker's own machine (num_machines: 1)")
    use_cpu = bool(getattr(cluster, "use_cpu", False))
    if count_gpus and distributed_type in GPU_TYPES and not use_cpu:
        import torch

        gpus = torch.cuda.device_count()
        if gpus < num_processes:
            raise LaunchError(f"{stage}.num_processes", f"{num_processes} processes of {distributed_type} need as "
                                                        f"many GPUs; {socket.gethostname()} has {gpus} (or set "
                                                        "use_cpu: true in the accelerate config)")
    options: list[str] = []
    if config_file:
        options += ["--config_file", config_file]
    options += ["--num_processes", str(num_processes)]
    mpi = bool(getattr(cluster, "mpirun_config", None))
    if num_processes > 1 and distributed_type in SINGLE_PROCESS_TYPES and not mpi:
        options.append("--multi_gpu")  # accelerate's torchrun path: N processes (gloo on a CPU, NCCL on GPUs)
    if num_processes > 1 and not getattr(cluster, "main_process_port", None):
        options += ["--main_process_port", str(_free_port())]  # two launches on one machine must not collide
    threads = environ.get(THREADS_ENV, "").strip()
    if threads.isdigit() and int(threads) > 0:
        options += ["--num_cpu_threads_per_process", threads]
    return LaunchPlan(config_file, num_processes, distributed_type, tuple(options))


def launch_problems(config, stages) -> list[tuple[str, str]]:
    """The launch fields' problems of a run at launch (:func:`training.preflight.preflight`): each chosen stage of
    :data:`TRAINING_FUNCTIONS` with ``launcher: accelerate`` gets :func:`launch_plan` on this machine, so a missing or
    broken accelerate config file, or a file asking for no process or several machines, refuses the launch instead
    of failing the stage hours later. GPUs are counted by the stage on its worker.

    Args:
        config: the validated :class:`training.config.RunConfig`.
        stages: the stages the run will execute.

    Returns:
        ``(config path, message)`` pairs.
    """
    problems = []
    for stage in TRAINING_FUNCTIONS:
        section = getattr(config, stage)
        if stage in stages and section.launcher != "in_process":
            try:
                launch_plan(section, stage, count_gpus=False)
            except LaunchError as exc:
                problems.append((exc.path, exc.message))
    return problems


def run_training(stage: str, *, reporter: Reporter | None = None, **inputs):
    """Run ``stage``'s training function with ``inputs`` as its section's ``launcher`` says: in this process, or
    launched (:func:`launch`).

    Args:
        stage: ``sft``, ``reward_model`` or ``policy`` (:data:`TRAINING_FUNCTIONS`).
        inputs: the training function's keyword arguments; ``config`` (the stage's section) is required.

    Returns:
        What the training function returns (``SFTResult``, ``RewardModelResult``, ``PolicyResult``).

    Raises:
        whatever the training function raises in process; see :func:`launch` for a launched one.
    """
    reporter = reporter or NullReporter()
    if inputs["config"].launcher == "in_process":
        return _training_function(stage)(reporter=reporter, **inputs)
    return launch(stage, reporter=reporter, **inputs)


def launch(stage: str, *, reporter: Reporter, poll_s: float = 0.2, **inputs):
    """Run ``stage``'s training function in processes started by ``accelerate launch`` and wait for them,
    forwarding the main process's reports to ``reporter`` and ``reporter.should_stop()`` to the processes.

    Args:
        stage: ``sft``, ``reward_model`` or ``policy``.
        reporter: gets each progress, metric and log line of the main process once.
        poll_s: seconds between two looks at the events file and at ``reporter.should_stop()``.
        inputs: the training function's keyword arguments (``config`` and ``output_dir`` required); a
            ``reward_fn`` must be a :class:`RewardModelRef`, a :class:`training.reward_model.RewardScorer` or an
            importable module-level function.

    Returns:
        The training function's result, rebuilt from the main process's ``result.json``.

    Raises:
        LaunchError: the launch fields do not fit this machine (:func:`launch_plan`).
        ValueError: an input cannot be sent to another process (a local function as the reward).
        training.progress.Cancelled: the reporter asked to stop; the processes saved a checkpoint at that step.
        TrainingProcessError: a process failed or the launcher exited with an error.
    """
    config = inputs["config"]
    plan = launch_plan(config, stage)
    work = Path(inputs["output_dir"]) / LAUNCH_DIR
    shutil.rmtree(work, ignore_errors=True)
    (work / "inputs").mkdir(parents=True)
    spec = {
        "stage": stage,
        "inputs": {name: _encode(name, value, work / "inputs") for name, value in inputs.items()},
        "events": str(work / "events.jsonl"),
        "stop": str(work / "stop"),
        "result": str(work / "result.json"),
        "parent_pid": os.getpid(),
    }
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    command = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()),
               sys.executable, "-m", "accelerate.commands.launch", *plan.options, "-m", "training.launcher",
               str(spec_path)]
    reporter.log(f"{stage}: {plan.describe()}; output in {work / 'output.log'}")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_child_env(),
        start_new_session=True,  # its own process group: ended as one
    )
    (work / "launcher.pid").write_text(str(process.pid))  # also its process group's id
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    reader = threading.Thread(target=_copy_output, args=(process.stdout, work / "output.log", tail), daemon=True)
    reader.start()
    events = _EventTail(Path(spec["events"]))
    asked_to_stop = False
    try:
        while process.poll() is None:
            events.forward(reporter)
            if not asked_to_stop and reporter.should_stop():
                asked_to_stop = True
                Path(spec["stop"]).touch()
                reporter.log(f"{stage}: asking the training processes to stop after this step (checkpoint first)")
            time.sleep(poll_s)
        reader.join(timeout=10)
        events.forward(reporter)
    finally:
        if process.poll() is None:
            _end_group(process)
    return _outcome(stage, plan, process.returncode, Path(spec["result"]), "\n".join(tail))


@dataclass(frozen=True)
class RewardModelRef:
    """A trained reward model as a TRL reward function, loaded (as a :class:`training.reward_model.RewardScorer`)
    on first use where the training runs: in each launched process, or in this one. It crosses a process boundary
    by its path, which a loaded scorer cannot do cheaply.

    Args:
        path: the reward model folder.
        max_length: the scorer's token budget (None: the one it was trained with).
    """

    path: str
    max_length: int | None = None

    @property
    def __name__(self) -> str:  # TRL names the reward's metrics after it (``rewards/reward_model/mean``)
        return "reward_model"

    def scorer(self):
        """The loaded :class:`~training.reward_model.RewardScorer`, loaded on the first call and kept as long as
        this reference lives."""
        loaded = self.__dict__.get("_scorer")
        if loaded is None:
            from training.reward_model import RewardScorer

            loaded = RewardScorer(self.path, max_length=self.max_length)
            object.__setattr__(self, "_scorer", loaded)  # a cache, not a field: equality and the spec ignore it
        return loaded

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        return self.scorer()(prompts=prompts, completions=completions, **kwargs)


# --- the parent: watching the launched processes -------------------------------------------------------------


class _EventTail:
    """Reads the complete lines added to the main process's events file since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def forward(self, reporter: Reporter) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
        self.offset += end
        for line in data[:end].decode("utf-8").splitlines():
            if line.strip():
                _deliver(json.loads(line), reporter)


def _deliver(event: dict, reporter: Reporter) -> None:
    kind = event.get("kind")
    if kind == "progress":
        reporter.progress(event["done"], event.get("total"), event.get("message", ""))
    elif kind == "metric":
        reporter.metric(event["step"], event["values"])
    elif kind == "log":
        reporter.log(event["line"])


def _copy_output(stream, log_path: Path, tail: deque) -> None:
    with log_path.open("w", encoding="utf-8") as log:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            log.write(line + "\n")
            log.flush()
            tail.append(line)
    stream.close()


def _outcome(stage: str, plan: LaunchPlan, returncode: int, result_path: Path, tail: str):
    record = json.loads(result_path.read_text()) if result_path.exists() else {}
    status = record.get("status")
    if status == "cancelled" and returncode == 0:
        raise Cancelled(record.get("message") or f"{stage} training stopped on request")
    if status == "ok" and returncode == 0:
        return _decode_result(stage, record["result"])
    error = record.get("error") if status == "error" else None
    what = f"{error['type']}: {error['message']}" if error else "no error was reported by the main process"
    raise TrainingProcessError(
        f"{stage}: the training processes ({plan.describe()}) exited with code {returncode}: {what}\n"
        f"--- the processes' output ends with:\n{tail}",
        returncode=returncode, error=error, output_tail=tail,
    )


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM the launcher's process group (it ends its training processes), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


#: Runs before the launcher, in the process that becomes it (``python -c ... PARENT_PID LAUNCHER...``): asks Linux
#: to SIGTERM it when its parent dies (``prctl(PR_SET_PDEATHSIG)``, which ``exec`` keeps), exits if the parent
#: is already gone, then becomes the launcher. A trampoline rather than ``Popen(preexec_fn=...)``, which is unsafe
#: in a process with threads (the job runner's heartbeat). Elsewhere than Linux it only execs.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "    if os.getppid() != int(sys.argv[1]):\n"
    "        sys.exit('training.launcher: the worker that started this launch is gone')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _child_env() -> dict[str, str]:
    """This environment, with this checkout importable (``python -m training.launcher`` from any folder)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- plain inputs and results ----------------------------------------------------------------------------------

_DATASETS = frozenset({"train_dataset", "eval_dataset", "human_eval_dataset", "preferences"})


def _encode(name: str, value, folder: Path) -> dict:
    """One training input as JSON: a dataset saved beside the spec, demonstrations, the reward by name, the config
    section's fields, or the value itself."""
    if value is None:
        return {"kind": "none"}
    if name in _DATASETS:
        import datasets

        if len(value) == 0:  # save_to_disk writes no shard that load_from_disk could read back
            return {"kind": "dataset", "path": None, "features": value.features.to_dict()}

        quiet = datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # no bars in the worker's log
        try:
            value.save_to_disk(str(folder / name))
        finally:
            if not quiet:
                datasets.enable_progress_bars()
        return {"kind": "dataset", "path": str(folder / name)}
    if name == "config":
        return {"kind": "config", "values": dataclasses.asdict(value)}
    if name == "examples":
        return {"kind": "demonstrations", "values": [{"prompt": e.prompt, "response": e.response} for e in value]}
    if name == "reward_fn":
        return {"kind": "reward", **_reward_reference(value)}
    if isinstance(value, Path):
        return {"kind": "path", "value": str(value.resolve())}
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} ({type(value).__name__}) cannot be sent to the training processes") from None
    return {"kind": "json", "value": value}


def _reward_reference(fn) -> dict:
    if isinstance(fn, RewardModelRef):
        return {"reward_model": fn.path, "max_length": fn.max_length}
    if type(fn).__name__ == "RewardScorer" and hasattr(fn, "path"):
        return {"reward_model": fn.path, "max_length": fn.max_length}
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module and module != "__main__" and "<" not in qualname and _importable(module, qualname) is fn:
        return {"callable": f"{module}:{qualname}"}
    raise ValueError(f"the reward function {fn!r} cannot be sent to the training processes: use a RewardModelRef "
                     "(a reward model folder) or a module-level function")


def _importable(module: str, qualname: str):
    try:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
        return target
    except (ImportError, AttributeError):
        return None


def _decode(stage: str, name: str, item: dict):
    kind = item["kind"]
    if kind == "none":
        return None
    if kind == "dataset":
        from datasets import Dataset, Features, load_from_disk

        if item["path"] is None:
            features = Features.from_dict(item["features"])
            return Dataset.from_dict({name: [] for name in features}, features=features)
        return load_from_disk(item["path"])
    if kind == "config":
        return _attribute("training.config", TRAINING_FUNCTIONS[stage][3])(**item["values"])
    if kind == "demonstrations":
        from training.sft import Demonstration

        return [Demonstration(e["prompt"], e["response"]) for e in item["values"]]
    if kind == "reward":
        if "reward_model" in item:
            return RewardModelRef(item["reward_model"], item.get("max_length"))
        module, qualname = item["callable"].split(":")
        return _importable(module, qualname)
    if kind == "path":
        return Path(item["value"])
    return item["value"]


def _encode_result(result) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(result), default=str))


def _decode_result(stage: str, values: dict):
    cls = _attribute(TRAINING_FUNCTIONS[stage][0], TRAINING_FUNCTIONS[stage][2])
    values = dict(values)
    values["path"] = Path(values["path"])
    if "history" in values:
        values["history"] = [(int(step), dict(metrics)) for step, metrics in values["history"]]
    return cls(**values)


def _attribute(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _training_function(stage: str) -> Callable:
    if stage not in TRAINING_FUNCTIONS:
        raise ValueError(f"no training function for stage {stage!r} (known: {', '.join(TRAINING_FUNCTIONS)})")
    module, function, _result, _config = TRAINING_FUNCTIONS[stage]
    return _attribute(module, function)


# --- the launched process --------------------------------------------------------------------------------------


class ProcessReporter:
    """The reporter of a launched training process: the main process appends progress, metrics and log lines to
    the events file as JSON lines (the others report nothing, so every step arrives once), and every process
    gets the same answer from :meth:`should_stop` at the same call: the main process's look at the stop file
    (and whether the parent is still alive), broadcast to the others.

    Every process must call :meth:`should_stop` equally often (the trainers call it once per step, from
    :class:`training.callbacks.ReporterCallback`), since the answer travels as a collective.
    """

    def __init__(self, events: Path, stop: Path, parent_pid: int, state) -> None:
        self.events = Path(events)
        self.stop = Path(stop)
        self.parent_pid = parent_pid
        self.state = state
        self.main = state.is_main_process
        self._stopped = False

    def _write(self, event: dict) -> None:
        if not self.main:
            return
        with self.events.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        self._write({"kind": "progress", "done": int(done), "total": total, "message": message})

    def metric(self, step: int, values: Mapping[str, float]) -> None:
        self._write({"kind": "metric", "step": int(step), "values": {k: float(v) for k, v in values.items()}})

    def log(self, line: str) -> None:
        self._write({"kind": "log", "line": str(line)})

    def should_stop(self) -> bool:
        if self.main and not self._stopped:
            self._stopped = self.stop.exists() or not _alive(self.parent_pid)
        if self.state.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            self._stopped = bool(broadcast_object_list([self._stopped], from_process=0)[0])
        return self._stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_result(path: Path, record: dict) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record, default=str))
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a launched process: ``python -m training.launcher SPEC`` (``accelerate launch`` runs it once
    per process). Reads the spec, calls the stage's training function with a :class:`ProcessReporter`, and in
    the main process writes ``result.json``: ``{"status": "ok", "result": ...}``, ``{"status": "cancelled"}`` or
    ``{"status": "error", "error": {"type", "message", "traceback"}}`` (then exits non-zero).
    """
    import traceback

    import torch
    from accelerate import PartialState

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m training.launcher SPEC.json (started by accelerate launch)", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    # The process group and this process's device first (as the trainer's arguments will ask for them), so that
    # whatever loads before the trainer (a reward model) lands on this process's GPU.
    state = PartialState(cpu=not torch.cuda.is_available())
    reporter = ProcessReporter(Path(spec["events"]), Path(spec["stop"]), spec["parent_pid"], state)
    result_path = Path(spec["result"])
    stage = spec["stage"]
    try:
        inputs = {name: _decode(stage, name, item) for name, item in spec["inputs"].items()}
        result = _training_function(stage)(reporter=reporter, **inputs)
    except Cancelled as exc:
        record = {"status": "cancelled", "message": str(exc)}
    except Exception as exc:
        if state.is_main_process:
            _write_result(result_path, {"status": "error", "error": {
                "type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}})
        raise  # the launcher ends the other processes
    else:
        record = {"status": "ok", "result": _encode_result(result)}
    if state.is_main_process:
        _write_result(result_path, record)
    state.wait_for_everyone()  # every process leaves together, the process group closed (not torn down at exit)
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
