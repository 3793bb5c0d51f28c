"""Make /dev/stdout and /dev/stderr re-openable for supervisord, whatever uid we run as.

supervisord opens `/dev/stdout` by path for every program's log. That re-opens fd 1 through /proc, which
checks the permissions of whatever fd 1 is: under OpenShift's random uid it is a pipe or file owned by the
container runtime (root), so the open fails with EACCES and no program starts. When that is the case, fd 1
and fd 2 are replaced by pipes we own, each drained by `cat` into the original descriptor, which needs no
re-open. When the descriptors can be re-opened (root, most runtimes) nothing changes.
"""

from __future__ import annotations

import os
import shutil


def _reopenable(fd: int) -> bool:
    try:
        os.close(os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_APPEND))
    except PermissionError:
        return False
    except OSError:
        return True  # not a permission problem (no /proc, closed fd): nothing this can fix
    return True


def _relay(fd: int, cat: str) -> None:
    read_end, write_end = os.pipe()
    if os.fork() == 0:  # the relay: copies our pipe into the descriptor we could not re-open
        os.dup2(read_end, 0)
        os.dup2(fd, 1)
        os.close(read_end)
        os.close(write_end)
        os.execv(cat, [cat])
    os.close(read_end)
    os.dup2(write_end, fd)
    os.close(write_end)


def ensure_reopenable_stdio() -> None:
    cat = shutil.which("cat")
    for fd in (1, 2):
        if cat and not _reopenable(fd):
            _relay(fd, cat)
