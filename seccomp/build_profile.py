#!/usr/bin/env python3
"""Generate the sandbox's seccomp profile (an allowlist), the one source of it.

Run ``python3 seccomp/build_profile.py`` after editing the lists below. It writes the profile
into the package (``crucible_ray/seccomp/crucible.json``, package data, so every install has
it); ``seccomp/crucible.json`` is a symlink to that file. A test checks that the committed JSON
matches this file. Everything not allowed fails with EPERM (ENOSYS for clone3,
see below). The syscalls the security design requires to be denied are listed in DENIED and a
test proves none of them slipped into ALLOWED.

On gVisor (runsc with ``--oci-seccomp``) the profile filters the *sandboxed program's* syscalls
as gVisor sees them; gVisor then answers EPERM for every denied call, whatever errno the profile
asks for. crucible_ray.policy derives the runsc variant from this file (see there).
"""

from __future__ import annotations

import json
from pathlib import Path

# Namespace-creating clone flags: NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
CLONE_NAMESPACE_FLAGS = 0x7E020000
ENOSYS = 38

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "personality",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "open_by_handle_at", "name_to_handle_at",
    "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm",
    "quotactl", "syslog", "lookup_dcookie", "vhangup", "uselib", "ustat", "sysfs", "_sysctl",
    "fanotify_init", "mbind", "set_mempolicy", "migrate_pages", "move_pages",
    "process_madvise", "memfd_secret", "nfsservctl", "clone3",
)  # fmt: skip

ALLOWED = (
    # files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "dup",
    "dup2", "dup3", "fcntl", "flock", "ioctl", "stat", "fstat", "lstat", "newfstatat", "statx",
    "statfs", "fstatfs", "access", "faccessat", "faccessat2", "getdents", "getdents64",
    "getcwd", "chdir", "fchdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat",
    "rmdir", "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink",
    "readlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
    "umask", "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "sync", "syncfs",
    "sync_file_range", "readahead", "fadvise64", "utime", "utimes", "utimensat", "futimesat",
    "mknod", "mknodat", "sendfile", "splice", "tee", "vmsplice", "copy_file_range",
    "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "pipe", "pipe2", "memfd_create", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "io_setup", "io_destroy", "io_getevents",
    "io_submit", "io_cancel",
    # polling
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2",
    # memory
    "mmap", "munmap", "mprotect", "mremap", "msync", "mincore", "madvise", "brk", "mlock",
    "mlock2", "munlock", "mlockall", "munlockall", "remap_file_pages", "pkey_mprotect",
    "pkey_alloc", "pkey_free", "membarrier",
    # processes and threads (clone is allowed only without namespace flags, below)
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
    "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv", "rseq",
    "arch_prctl", "prctl", "set_thread_area", "get_thread_area", "seccomp",
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set", "getcpu",
    "getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "sysinfo", "uname",
    "capget", "capset", "restart_syscall",
    # identities (without capabilities these can only keep or drop privileges)
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
    "setfsuid", "setfsgid",
    # signals and time
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "kill", "tkill",
    "tgkill", "pidfd_open", "pidfd_send_signal", "pause", "alarm", "nanosleep",
    "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "getitimer",
    "setitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun",
    "timer_delete", "getrandom",
    # IPC and sockets (the network namespace is empty: only loopback/unix sockets work)
    "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "shutdown",
    "getsockname", "getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg",
    "recvmsg", "sendmmsg", "recvmmsg", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop",
    "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
)  # fmt: skip


def build_profile() -> dict:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": sorted(ALLOWED), "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {
                        "index": 0,
                        "value": CLONE_NAMESPACE_FLAGS,
                        "valueTwo": 0,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
                "comment": "clone without namespace flags",
            },
            {
                "names": ["clone3"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": ENOSYS,
                "comment": "flags live in memory seccomp cannot read: ENOSYS makes libc use clone",
            },
        ],
    }


def render() -> str:
    return json.dumps(build_profile(), indent=1) + "\n"


if __name__ == "__main__":
    overlap = set(ALLOWED) & set(DENIED)
    assert not overlap, f"allowed and denied at once: {sorted(overlap)}"
    target = Path(__file__).resolve().parents[1] / "crucible_ray" / "seccomp" / "crucible.json"
    target.write_text(render())
    print(f"wrote {target}")
