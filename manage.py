#!/usr/bin/env python
"""Django's command-line utility for RLAIF Studio."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    from django.core.management import execute_from_command_line

    from rlaif_site.env import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        # A malformed environment variable is the user's input: one line, no traceback.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
