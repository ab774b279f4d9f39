"""WSGI entry point (served by waitress in `manage.py studio`)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
application = get_wsgi_application()
