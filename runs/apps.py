from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        # Constitution lint reads the judgments made under a version's principles: register the provider
        # with the constitutions app, which knows nothing of runs.
        from constitutions import lint
        from runs.lint import version_lint

        lint.register(version_lint)
