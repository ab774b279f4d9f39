from django.apps import AppConfig


class ConstitutionsConfig(AppConfig):
    name = "constitutions"
    verbose_name = "Constitutions"
