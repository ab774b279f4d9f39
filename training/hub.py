"""Is the Hugging Face Hub reachable from this machine? One bounded probe, shared by the prompt importer
(hub dataset ids) and the launch pre-flight (hub model ids). Plain Python, no Django."""
from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlparse

#: Seconds the probe may take in all (name lookup and connection).
HUB_PROBE_TIMEOUT_S = 3.0


def hub_offline_reason() -> str:
    """Why the hub cannot be used right now ("" when it answers): offline mode, or no connection."""
    import huggingface_hub.constants as hub_constants

    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    if any(os.environ.get(f, "").strip().lower() in ("1", "true", "yes", "on") for f in flags):
        return "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
    host = urlparse(hub_constants.ENDPOINT).hostname or "huggingface.co"
    try:
        connect_within(host, 443, HUB_PROBE_TIMEOUT_S)
    except OSError as exc:
        return f"{host} is not reachable from this server ({exc.strerror or exc})"
    return ""


def connect_within(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection to ``host:port`` within about ``timeout`` seconds in all, name lookup
    included (a socket timeout does not bound ``getaddrinfo``, which can wait for a dead resolver for long).

    Raises:
        OSError: the name does not resolve, the lookup or the connection takes too long, or it is refused.
    """
    found: dict = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    deadline = time.monotonic() + timeout
    resolver = threading.Thread(target=lookup, name="hub-probe-lookup", daemon=True)
    resolver.start()
    resolver.join(timeout)
    if resolver.is_alive():
        raise TimeoutError(f"looking up {host} took over {timeout:g} s")
    if "error" in found:
        raise found["error"]
    error: OSError = TimeoutError(f"connecting to {host} took over {timeout:g} s")
    for family, kind, proto, _, address in found["addresses"]:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(address)
                return
        except OSError as exc:
            error = exc
    raise error
