"""Network guard for the rehearsal: put this folder on PYTHONPATH and set NETGUARD_LOG=<file>.

Every Python process (Snakemake, its SLURM jobs, the scripts) then refuses connections and name
look-ups to anything but loopback / Unix sockets, and appends one line per attempt to the log
(pid, program, destination).  The rehearsal asserts that the log stays empty.

NETGUARD_BLOCK=<host>:<port> also refuses (and logs) connections to that loopback address: the
stand-in hub server, which offline jobs must never contact, even when it is running.
"""

import ipaddress
import os
import socket
import sys

_LOG = os.environ.get("NETGUARD_LOG")
_BLOCK = os.environ.get("NETGUARD_BLOCK", "")


def _blocked(address) -> bool:
    return bool(_BLOCK) and f"{address[0]}:{address[1]}" == _BLOCK


def _local(host) -> bool:
    if host in (None, "", "localhost") or str(host).endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host) == socket.gethostname()


def _refuse(what: str, dest) -> None:
    with open(_LOG, "a") as fh:
        fh.write(f"{os.getpid()} {' '.join(sys.argv)[:200]!r} {what} {dest!r}\n")
    raise OSError(101, f"network access blocked by tests/netguard ({what} {dest!r})")


if _LOG:
    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
    _getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and (not _local(address[0]) or _blocked(address)):
            _refuse("connect", address)
        return _connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and (not _local(address[0]) or _blocked(address)):
            _refuse("connect", address)
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _local(host.decode() if isinstance(host, bytes) else host):
            _refuse("getaddrinfo", host)
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
