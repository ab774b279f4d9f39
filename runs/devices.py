"""Workers and their devices: the ``gpu`` queue's hygiene.

A run may send its training stages to the ``gpu`` queue (:data:`runs.stages.registry.GPU_STAGES`: the launch
form's "Training stages on the 'gpu' queue", the single-GPU preset), which workers started with ``rqworker gpu``
on a GPU machine take. Three things keep that honest:

- **Threads.** ``STUDIO_TORCH_THREADS`` (``settings.TORCH_THREADS``) sets torch's intra-op thread count when a
  worker starts (:func:`apply_torch_threads`, called by the workers of :mod:`rlaif_site.queueing`, which
  ``rqworker`` and ``studio`` both use; a forking worker's work-horses inherit it). Unset, torch keeps its
  default (one thread per core), and the worker does not even import torch.
- **A GPU job on a machine without a GPU** fails at its start with a message saying what to do
  (:func:`require_gpu`, called by the job runner), instead of training on the CPU for hours.
  ``STUDIO_ALLOW_CPU_ON_GPU_QUEUE=true`` lets such a worker run it anyway (tests, CI, a CPU trial of a GPU set-up).
- **The launch** cannot see the GPU, which is on another machine, so its pre-flight only looks at RQ's worker
  registry: when no live worker listens on the ``gpu`` queue, the launch goes ahead with a warning (a
  pre-flight fallback, :func:`gpu_worker_fallback`): the stages wait, queued, until one starts.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable

from django.conf import settings

logger = logging.getLogger(__name__)

#: The queue of accelerator work.
GPU_QUEUE = "gpu"
#: The pre-flight fallback's config path (the config section that routes stages to queues).
QUEUES_PATH = "queues"


class NoGpu(RuntimeError):
    """A stage taken from the ``gpu`` queue by a worker that has no GPU."""


def apply_torch_threads() -> int | None:
    """Set torch's intra-op thread count to ``STUDIO_TORCH_THREADS`` for this worker process.

    Returns:
        The thread count set, or None when the setting is unset (0): torch keeps its default, and is not
        imported.
    """
    threads = settings.TORCH_THREADS
    if not threads:
        return None
    import torch

    torch.set_num_threads(threads)
    logger.info("torch uses %d thread(s) in this worker (STUDIO_TORCH_THREADS)", threads)
    return threads


def has_accelerator() -> bool:
    """Whether this process sees a CUDA device or Apple's MPS. Imports torch (call it in a job, not in a
    forking worker's parent, which must stay free of CUDA)."""
    import torch

    if torch.cuda.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def gpu_queue_problem(stage: str, queue_name: str | None) -> str | None:
    """Why this worker must not run ``stage``, taken from the queue ``queue_name``, or None when it may
    (:func:`has_accelerator`). Only a job of the ``gpu`` queue is checked, and not at all with
    ``STUDIO_ALLOW_CPU_ON_GPU_QUEUE=true``.

    Args:
        stage: the stage's name.
        queue_name: the queue the job came from (``job.origin``); None outside a worker.
    """
    if queue_name != GPU_QUEUE or settings.ALLOW_CPU_ON_GPU_QUEUE or has_accelerator():
        return None
    return (f"stage {stage} was routed to the gpu queue but this worker (host {socket.gethostname()}) has no "
            "GPU: start `rqworker gpu` on a GPU machine, or untick 'Training stages on the gpu queue' "
            "(STUDIO_ALLOW_CPU_ON_GPU_QUEUE=true lets this worker run it on its CPU)")


def require_gpu(stage: str, queue_name: str | None) -> None:
    """Refuse to run ``stage`` here when it came from the ``gpu`` queue and this worker has no GPU.

    Raises:
        NoGpu: with :func:`gpu_queue_problem`'s message.
    """
    problem = gpu_queue_problem(stage, queue_name)
    if problem:
        raise NoGpu(problem)


def gpu_workers() -> list:
    """The live RQ workers listening on the ``gpu`` queue (RQ drops a worker whose heartbeat key expired:
    a killed worker disappears within its TTL, a stopped one at once).

    Raises:
        redis.exceptions.RedisError: Redis cannot be reached.
    """
    from rq import Worker

    from rlaif_site.queueing import get_queue

    return Worker.all(queue=get_queue(GPU_QUEUE))


def gpu_worker_fallback(queues: dict[str, str], stages: Iterable[str], *,
                        workers: Callable[[], list] = gpu_workers) -> dict[str, str]:
    """The launch pre-flight's device check: ``{"queues": warning}`` when the run sends one of ``stages`` to
    the ``gpu`` queue and no live worker listens there (or Redis cannot tell), else ``{}``. A warning, not a
    refusal: the GPU machine may start its worker later, and the stages wait for it, queued.

    Args:
        queues: the run config's ``queues`` (stage name -> queue name).
        stages: the stages the run will execute.
        workers: returns the live workers of the ``gpu`` queue (:func:`gpu_workers`).
    """
    routed = [stage for stage in stages if queues.get(stage) == GPU_QUEUE]
    if not routed:
        return {}
    try:
        live = workers()
    except Exception as exc:  # noqa: BLE001 - the check only warns; the launch itself still enqueues or fails
        from training.redaction import redact

        return {QUEUES_PATH: redact(f"could not check for workers on the gpu queue ({type(exc).__name__}: {exc}); "
                                    f"{', '.join(routed)} will wait, queued, until one takes them")}
    if live:
        return {}
    return {QUEUES_PATH: (f"no worker listens on the gpu queue now: {', '.join(routed)} will wait, queued, until "
                          "`python manage.py rqworker gpu` runs on a GPU machine (same DATABASE_URL, REDIS_URL "
                          "and STUDIO_DATA_DIR)")}
