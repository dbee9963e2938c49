"""``ossdesk`` for the emulated WAN: the real CLI, with the emulated link's addresses treated
like loopback.

    python -m tests.bench.ossdesk_wan upload FILE --endpoint http://10.200.0.1:PORT ...

``ossdesk`` refuses plain http to any address but loopback (the data and the signatures would
travel unencrypted) and has no switch to allow it. The WAN benchmark's sink listens on
10.200.0.1 inside a network namespace, reachable only from its peer namespace, so this wrapper
counts 10.200.0.0/24 as local and then runs ``ossdesk.cli.main`` unchanged.
"""

from __future__ import annotations

import ipaddress
import sys

from ossdesk.cli import main
from ossdesk.core import oss

WAN_NET = ipaddress.ip_network("10.200.0.0/24")
_original = oss.Endpoint.is_loopback


def _is_local(self: oss.Endpoint) -> bool:
    try:
        if ipaddress.ip_address(self.host) in WAN_NET:
            return True
    except ValueError:
        pass
    return bool(_original.fget(self))  # type: ignore[attr-defined]


oss.Endpoint.is_loopback = property(_is_local)  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    sys.exit(main())
