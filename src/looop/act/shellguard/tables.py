"""The shell tripwire's tables: operators, command families, system paths, wrappers.

Declarative data only (it may stay long); the rules that read it live in rules.py.
"""

from __future__ import annotations

import re

MAX_CHARS = 256 * 1024  # a decision is at most this big; longer text is refused unread

_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<-", "<<<", "<&", "<>"})
_WRITES = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<>"})

_SHELLS = frozenset(
    {"sh", "bash", "rbash", "zsh", "dash", "ksh", "mksh", "pdksh", "oksh", "yash", "ash", "hush"}
    | {"posh", "fish", "tcsh", "csh"}
)
# They run the script on their stdin (or a file) later, as a shell: `echo … | at now`
_SCHEDULERS = frozenset({"at", "batch", "crontab"})
_INTERPRETERS = re.compile(
    r"(?:python[\d.]*|pypy[\d.]*|perl[\d.]*|ruby[\d.]*|node|nodejs|deno|bun|php[\d.]*|lua[\d.]*"
    r"|luajit|tclsh[\d.]*|pwsh|powershell|osascript)"
)
_CODE_FLAGS = ("-c", "-e", "-m", "-r", "-p", "-f", "--eval", "--print", "--command")
_SOURCES = frozenset({"source", "."})
_STDIN = frozenset({"-", "/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"})
_DOWNLOADERS = frozenset(
    {"curl", "wget", "wget2", "fetch", "http", "https", "xh", "xhs", "curlie", "lwp-request"}
    | {"nc", "ncat", "netcat", "socat"}
)
_PRIVILEGE = frozenset(
    {"sudo", "doas", "pkexec", "su", "run0", "sudoedit", "runuser", "ksu", "dzdo", "pfexec"}
)
_POWER = frozenset(
    {"shutdown", "reboot", "halt", "poweroff", "pm-suspend", "pm-hibernate", "pm-suspend-hybrid"}
)
_SYSTEMCTL_POWER = frozenset(
    {"reboot", "poweroff", "halt", "kexec", "soft-reboot", "suspend", "hibernate", "hybrid-sleep"}
    | {"suspend-then-hibernate", "sleep", "rescue", "emergency"}
)
_FS_MAKERS = ("mkfs", "mke2fs", "mkswap", "mkdosfs", "mkntfs", "mkexfatfs", "mkudffs", "newfs")
_PARTITIONERS = frozenset({"fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted"})
_READ_ONLY_FLAGS = frozenset(
    {"-l", "--list", "-d", "--dump", "-p", "--print", "print", "-v", "--verify", "--help"}
    | {"-n", "--no-act", "--version"}
)
_DEV_OK = frozenset({"null", "zero", "stdout", "stderr", "tty", "fd/1", "fd/2", "full", "random"})
_DISKS = ("sd", "nvme", "disk", "rdisk", "mmcblk", "hd", "vd", "xvd", "mapper/", "dm-", "md")
_DISKS_MORE = ("nbd", "mtd", "root", "mem", "kmem", "port", "zvol/")
_MAIN = frozenset({"main", "master"})
_DELETERS = frozenset({"rm", "shred", "unlink", "rmdir", "chmod", "chown", "chgrp", "truncate"})
_RECURSIVE_TOOLS = frozenset({"rm", "chmod", "chown", "chgrp", "chattr", "setfacl"})
# Paths whose recursive delete or chmod/chown wrecks the machine or a home (lower-cased).
_SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/mnt"}
    | {"/media", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var"}
    | {"/snap", "/nix", "/system", "/library", "/applications", "/users", "/private"}
    | {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local", "/usr/share"}
    | {"/usr/include", "/usr/local/bin", "/usr/local/lib", "/var/lib", "/private/etc"}
)
# Every folder right under these is someone's home: the tripwire guards them all.
_HOME_ROOTS = frozenset({"/home", "/users"})

# Words that may stand before the command proper; each with the options that take an argument
# and how many plain arguments it eats before the command (timeout's duration).
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "("})
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset({"-u", "--unset", "-c", "--chdir"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "nohup": (frozenset(), 0),
    "time": (frozenset({"-f", "--format", "-o", "--output"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-t", "--class", "--classdata"}), 0),
    "chrt": (frozenset(), 1),
    "taskset": (frozenset(), 1),
    "flock": (frozenset({"-w", "--timeout", "--conflict-exit-code"}), 1),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "unshare": (frozenset(), 0),
    "nsenter": (frozenset({"-t", "--target"}), 0),
    "xargs": (frozenset({"-i", "-n", "-p", "-l", "-d", "-a", "-e", "-s"}), 0),
    "busybox": (frozenset(), 0),
    "toybox": (frozenset(), 0),
    "coproc": (frozenset(), 0),
    "unbuffer": (frozenset(), 0),
    "caffeinate": (frozenset({"-t", "-w"}), 0),
    "watch": (frozenset({"-n", "--interval", "-d", "--differences", "-q"}), 0),
    "systemd-run": (frozenset({"-p", "--property", "-u", "--unit", "-e", "--setenv"}), 0),
}
# git subcommands that move the checked-out branch (in a worker's repo: landing by hand)
_GIT_MOVES = frozenset({"merge", "pull", "rebase", "cherry-pick", "am", "reset", "update-ref"})
_GIT_TAKES = frozenset({"-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})

_ASSIGNMENT = re.compile(r"[a-z_][a-z0-9_]*\+?=.*", re.S)
# ~, ~user, ~-, $HOME, ${HOME}, ${HOME…} (any operator), $OLDPWD; then only slashes, dots, globs
_HOME = re.compile(
    r"(?:~[a-z0-9_.-]*|\$home|\$\{home(?:[^a-z0-9_}][^}]*)?\}|\$oldpwd|\$\{oldpwd\})(?:/[/.*]*)?"
)
_MAX_DEPTH = 4  # `bash -c "sh -c '…'"` nesting we still look into; deeper is refused
_SHOW_CHARS = 80

DEFAULT_FIX = "do it by hand, or set shell_policy"
