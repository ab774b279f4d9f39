"""The untrusted-text model fields live in :mod:`rlaif_site.fields` (shared with ``constitutions``); this module
keeps the import path that ``runs`` migrations 0005+ recorded."""
from rlaif_site.fields import (  # noqa: F401 - re-exported for migrations
    NulFreeCharField,
    NulFreeJSONField,
    NulFreeTextField,
    RedactedCharField,
    RedactedJSONField,
    RedactedTextField,
)
