"""Whether a server can listen on an address: `prodcat serve` and `prodcat app` check before they start.

    >>> check_can_listen("127.0.0.1", 0)      # any free port: nothing to say
    >>> check_can_listen("no-such-host.invalid", 8000)     # doctest: +SKIP
    Traceback (most recent call last):
    prodcat.errors.ConfigError: cannot listen on no-such-host.invalid:8000: Name or service not known
"""

from __future__ import annotations

import socket

from prodcat.errors import ConfigError


def check_can_listen(host: str, port: int) -> None:
    """A taken port or unknown host as one line, before the server logs its own traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
