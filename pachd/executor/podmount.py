"""Mounts a pod's /pfs/out and /pfs/prev inside the pod's own mount namespace, for a pachd
that is not root (overlay.mount_in_pod runs this file as a program of its own).

A pachd without root cannot mount on the host, but an unprivileged pod's namespaces are its
user's: bubblewrap made a user namespace, owned by pachd's user, for the pod's mounts. This
program forks; the parent makes a user and mount namespace of its own (a copy of the host's
view, where the laid-out output and the pod's layers are folders it may mount) and builds the
two overlays there as detached mounts; the child, still in the host's user namespace, enters
the pod's mount namespace (through the user namespace that owns it, where pachd's user has
every right) and attaches them at /pfs/out and /pfs/prev. The pod, which holds no capability
in that namespace, cannot undo them; they end with the pod's namespace.

Only the standard library. pachd starts it once (`python -I -S podmount.py --serve`: a Python's
start is about 20 ms) and asks it for each pod on its stdin; each pod's mounts are made by a
child of its own, since building them changes the namespaces of the process that does.

    podmount.py --serve     then, per line: POD_PID LOWER CHANGES WORK EMPTY, tab-separated
POD_PID is the sandbox's outer process (bwrap); the pod is its child.
"""

from __future__ import annotations

import array
import ctypes
import os
import socket
import sys

SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432  # x86-64 and arm64 alike
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 0, 1, 6
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
NS_GET_USERNS = 0xB701  # ioctl on a namespace: the user namespace owning it

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _overlay(options: list[tuple[str, str]], attributes: int) -> int:
    """A detached overlay mount with `options` (paths resolved here, in this namespace)."""
    fs = _check(_libc.syscall(SYS_FSOPEN, b"overlay", FSOPEN_CLOEXEC), "fsopen overlay")
    for key, value in options:
        _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0), key)
    # userxattr: the overlay's own marks as user.* attributes, which a user namespace may write.
    _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_SET_FLAG, b"userxattr", None, 0), "userxattr")
    _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0), "overlay")
    mounted = _check(_libc.syscall(SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, attributes), "fsmount")
    os.close(fs)
    return mounted


def build(lower: str, changes: str, work: str, empty: str) -> list[int]:
    """Both overlays, from a user and mount namespace of this process's own."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:  # files written through the overlay stay this user's
            f.write(text)
    # As overlay.mount_output's (see there): a moved folder copied up whole ("nofollow": under
    # userxattr, "off" would still follow redirects, which it refuses); prev read-only in itself.
    out = _overlay([("lowerdir", lower), ("upperdir", changes), ("workdir", work),
                    ("redirect_dir", "nofollow"), ("metacopy", "off")], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
    prev = _overlay([("lowerdir", f"{lower}:{empty}")], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
    return [out, prev]


def attach(pod_pid: int, mounts: list[int]) -> None:
    """Enters the pod's mount namespace and attaches `mounts` at /pfs/out and /pfs/prev."""
    with open(f"/proc/{pod_pid}/task/{pod_pid}/children") as children:
        pod = int(children.read().split()[0])
    mnt = os.open(f"/proc/{pod}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    owner = _check(_libc.ioctl(mnt, NS_GET_USERNS), "the pod's user namespace")
    _check(_libc.setns(owner, CLONE_NEWUSER), "entering the pod's user namespace")
    _check(_libc.setns(mnt, CLONE_NEWNS), "entering the pod's mount namespace")
    for fd, target in zip(mounts, (b"/pfs/out", b"/pfs/prev")):
        _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), target.decode())


def mount_in(pod_pid: int, lower: str, changes: str, work: str, empty: str) -> int:
    """Both overlays built here and attached in the pod; the exit code (errors said on stderr).
    This process's own namespaces change: it is a child of the caller's (see serve)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = os.fork()
    if child == 0:  # stays in the host's user namespace: only from there can it enter the pod's
        ours.close()
        try:
            _, ancillary, _, _ = theirs.recvmsg(1, socket.CMSG_SPACE(8))
            if not ancillary:
                os._exit(1)  # the parent failed, and said why
            fds = array.array("i")
            fds.frombytes(ancillary[0][2][:8])
            attach(pod_pid, list(fds))
        except OSError as err:
            print(f"podmount: {err}", file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    theirs.close()
    try:
        mounts = build(lower, changes, work, empty)
    except OSError as err:
        print(f"podmount: {err}", file=sys.stderr, flush=True)
        ours.close()
        os.waitpid(child, 0)
        return 1
    ours.sendmsg([b"m"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", mounts).tobytes())])
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def serve() -> int:
    """Mounts for one pod per line read ("POD_PID LOWER CHANGES WORK EMPTY", tab-separated), each
    from a child of its own, answering "ok" or the error on a line; until stdin ends (pachd's
    end). Started once, it spares each pod a Python's start."""
    for line in sys.stdin:
        request = line.rstrip("\n").split("\t")
        errors_r, errors_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(errors_r)
            os.dup2(errors_w, 2)
            try:
                code = mount_in(int(request[0]), *request[1:5]) if len(request) == 5 else 2
            except Exception as err:  # whatever it is, it is this request's answer, not the server's end
                print(f"podmount: {err}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        os.close(errors_w)
        with os.fdopen(errors_r, "rb") as errors:
            said = errors.read().decode(errors="replace").strip().splitlines()
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        answer = "ok" if code == 0 else (said[-1] if said else f"podmount: exit code {code}")
        print(answer.replace("\n", " "), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve())
