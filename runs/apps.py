from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        # Constitution lint reads the judgments made under a version's principles, a version's page lists the
        # runs that pin it, and the judge-prompt preview picks prompts from prompt sets: register the providers
        # with the constitutions app, which knows nothing of runs.
        from constitutions import lint, pins, prompt_sources
        from runs.constitution_providers import PROMPT_SETS, RUN_PINS
        from runs.lint import version_lint

        lint.register(version_lint)
        pins.register(RUN_PINS)
        prompt_sources.register(PROMPT_SETS)
