"""Queue access for RLAIF Studio: one code path for a real Redis and the embedded queue.

With ``REDIS_URL`` unset, django-rq is pointed (through its documented ``USE_REDIS_CACHE`` option) at
:class:`EmbeddedRedisCache`, whose client is an in-memory fakeredis connection. All connections in one
process share one :class:`fakeredis.FakeServer`, so the web server (in a thread) and a ``SimpleWorker``
(in the main thread, where RQ installs its signal handlers) see the same queues. Jobs are lost when the
process stops; ``runs.services.recover_interrupted`` re-enqueues unfinished stages at the next start.

Every long-lived worker of either kind (:class:`StudioWorker`, :class:`StudioForkWorker`) also runs the
lost-worker monitor of :mod:`runs.recovery` in a daemon thread, so a stage whose worker was killed is found
and re-queued wherever workers run, not only when ``studio`` starts.
"""
from __future__ import annotations

import threading

import django_rq
import fakeredis
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from rq import Queue, SimpleWorker, Worker

_server_lock = threading.Lock()
_server: fakeredis.FakeServer | None = None


def embedded_connection() -> fakeredis.FakeRedis:
    """Return a connection to this process's in-memory Redis (created on first use)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_server)


class EmbeddedRedisCache(LocMemCache):
    """A cache whose ``_client`` is the embedded Redis; django-rq reads ``caches[...]._client``."""

    @property
    def _client(self) -> fakeredis.FakeRedis:
        return embedded_connection()


def get_queue(name: str = "default") -> Queue:
    """Return the django-rq queue ``name`` (``default`` for CPU stages, ``gpu`` for accelerator work)."""
    return django_rq.get_queue(name)


def queue_names() -> tuple[str, ...]:
    """Names of the queues a worker should listen to, highest priority first."""
    return tuple(settings.QUEUE_NAMES)


#: Set when the worker in this process was asked to stop (Ctrl-C, SIGTERM). Stage reporters poll it, so a
#: long stage stops at its next safe point and is left to resume at the next start instead of being
#: waited for or marked cancelled.
SHUTDOWN = threading.Event()


#: Names of the workers working in this process: recovery never takes their jobs for lost.
LOCAL_WORKERS: set[str] = set()


class _RecoveryMonitorMixin:
    """Sets torch's thread count (:func:`runs.devices.apply_torch_threads`) and starts
    :func:`runs.recovery.start_monitor` when the worker starts working (the monitor not in burst mode: a
    burst worker is a test or a one-off drain), and stores failed jobs' tracebacks without secret values
    (an endpoint's error may echo an API key; RQ keeps the traceback in Redis and shows it on the queue pages)."""

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", **kwargs):
        from training.redaction import redact

        return super().handle_job_failure(job, queue, started_job_registry=started_job_registry,
                                          exc_string=redact(exc_string), **kwargs)

    def work(self, burst: bool = False, *args, **kwargs):
        from runs.devices import apply_torch_threads

        apply_torch_threads()  # STUDIO_TORCH_THREADS; a forking worker's work-horses inherit it
        if not burst:
            from runs.recovery import start_monitor

            start_monitor()
        LOCAL_WORKERS.add(self.name)
        try:
            return super().work(burst, *args, **kwargs)
        finally:
            LOCAL_WORKERS.discard(self.name)


class StudioWorker(_RecoveryMonitorMixin, SimpleWorker):
    """RQ's ``SimpleWorker`` (jobs run in this process, which an in-memory queue requires) that also tells
    running stages about a warm shutdown through :data:`SHUTDOWN`."""

    def request_stop(self, signum, frame):
        SHUTDOWN.set()
        super().request_stop(signum, frame)


#: Seconds between the heartbeats a forking worker sends while its work-horse runs (RQ's default is 30).
JOB_MONITORING_INTERVAL = 5


class StudioForkWorker(_RecoveryMonitorMixin, Worker):
    """RQ's forking ``Worker`` (``manage.py rqworker`` with ``REDIS_URL``) that heart-beats every
    :data:`JOB_MONITORING_INTERVAL` seconds while a job runs, so a killed worker is noticed in seconds."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL)
        super().__init__(*args, **kwargs)
