"""The versioned JSON API (``/api/v1/``), built with django-ninja: typed pydantic schemas in, typed schemas
out, and an OpenAPI schema generated from the same code (served with Swagger UI at ``/api/v1/docs``)."""
