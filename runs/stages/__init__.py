"""Stage implementations: one module per stage, each with ``run(stage_run, reporter) -> None``.

:mod:`runs.stages.registry` lists the stages and everything else about them. The other modules here are
shared by several stages (:mod:`~runs.stages.stage_io`, :mod:`~runs.stages.judging`). A stage
module does not import another stage's module: shared work goes to a shared module or to ``training``.

A stage function is thin: it loads rows, calls ``training``, writes results in bulk (idempotently, so a
second call after an interruption only does what is missing) and reports progress. It raises
:class:`training.progress.Cancelled` when the reporter asks it to stop.
"""
