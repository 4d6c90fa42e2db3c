"""The rule tables of the local danger analysis (see llm.terminal.danger): levels, the simple
command type the rules inspect, path and credential classification, and one rule per program.

A rule takes a ``Cmd`` (program name with wrappers peeled, its arguments, its redirects and the
analysis context) and yields ``(level, reason)`` findings (``None`` entries are ignored). Rules
that must analyse nested commands call back into the analyser through the context:
``c.ctx.script(text)`` for shell code and ``c.ctx.command(words)`` for one argv.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from fnmatch import fnmatchcase
from collections.abc import Callable, Iterable
from typing import Any

LEVELS = ("safe", "caution", "dangerous")
SAFE, CAUTION, DANGEROUS = LEVELS
RANK = {lvl: i for i, lvl in enumerate(LEVELS)}


# ----------------------------------------------------------------------------- commands
@dataclass
class Cmd:
    name: str
    args: list[str]
    redirects: list[tuple[str, str]]
    ctx: Any  # the analyser (danger.py): script(text), command(words), inner(word)
    elevated: str = ""


Finding = tuple[str, str]  # (level, reason)
Rule = Callable[[Cmd], Iterable[Finding | None]]  # None entries are ignored


def strip_options(args: list[str], valued: set[str]) -> list[str]:
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            return args[i + 1 :]
        i += 2 if args[i] in valued else 1
    return args[i:]


# ----------------------------------------------------------------------------- paths
_DEVICE = re.compile(
    r"^/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|r?disk\d|mmcblk\d|md\d|dm-\d|"
    r"mapper/|loop\d|sr\d|mem$|kmem$|port$)|^/proc/sysrq-trigger$"
)
_CRITICAL_FILES = {
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/fstab",
    "/boot/grub/grub.cfg",
}
_SYSTEM_DIRS = {
    "/",
    "~",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/sbin",
    "/srv",
    "/sys",
    "/usr",
    "/var",
    "/var/lib",
    "/snap",
    "/mnt",
    "/media",
    "/System",
    "/Library",
    "/Applications",
    "/Users",
    "/private",
}
_SECRET_GLOBS = (
    "*.ssh",
    "*.ssh/id_*",
    "*.ssh/*_key",
    "/etc/ssh/ssh_host_*",
    "*.aws",
    "*.aws/credentials",
    "*.gnupg",
    "*.gnupg/*",
    "/etc/shadow",
    "/etc/gshadow",
    "*.netrc",
    "*.pgpass",
    "*.git-credentials",
    "*.docker/config.json",
    "*.kube/config",
    "*.npmrc",
    "*.pypirc",
    ".env",
    "*/.env",
    ".env.*",
    "*/.env.*",
    "*.pem",
    "*.key",
    "*.config/gcloud*",
)
_NOT_SECRET = (".pub", ".example", ".sample", ".template", ".dist")


def _norm(path: str) -> str:
    p = re.sub(r"^(\$HOME|\$\{HOME\}|~[\w-]*)(?=/|$)", "~", path)
    p = posixpath.normpath(re.sub(r"/+", "/", p)) if p else p
    while len(p) > 1 and p.endswith(("/*", "/.", "/")):
        p = p[:-2] if p.endswith(("/*", "/.")) else p[:-1]
        p = p or "/"
    return p


def _is_system(path: str) -> bool:
    p = _norm(path)
    return (
        p in _SYSTEM_DIRS
        or p in _CRITICAL_FILES
        or bool(re.fullmatch(r"/(home|Users)/[^/]+", p))
        or (p.startswith("/usr/") and p.count("/") == 2)
    )


def _is_broad(path: str) -> bool:
    p = _norm(path)
    return _is_system(p) or p in {"*", ".*"} or all(seg in (".", "..") for seg in p.split("/"))


def write_findings(target: str, append: bool = False, how: str = "writes to"):
    p = _norm(target)
    if _DEVICE.match(p):
        return [(DANGEROUS, f"{how} raw device {target}")]
    if p in _CRITICAL_FILES or p.startswith("/boot/"):
        return [(CAUTION if append else DANGEROUS, f"{how} critical system file {target}")]
    if re.match(r"/(etc|usr|bin|sbin|lib\w*)/", p):
        return [(CAUTION, f"{how} system path {target}")]
    return []


def is_secret(word: str, ctx) -> bool:
    if any(any(is_secret(w, ctx) for w in _safe_split(inner)) for inner in ctx.inner(word)):
        return True
    for cand in {word, word.split("=", 1)[-1]}:
        p = _norm(cand.lstrip("@<").split(";")[0])
        if p and not p.endswith(_NOT_SECRET) and any(fnmatchcase(p, g) for g in _SECRET_GLOBS):
            return True
    return False


def _safe_split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


# ----------------------------------------------------------------------------- cross-command
SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "tcsh", "csh"}
INTERPRETERS = {"python", "python2", "python3", "perl", "ruby", "node", "php", "lua"}
DOWNLOADERS = {"curl", "wget", "fetch", "http", "https", "xh", "aria2c"}
NETWORK = {
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "scp",
    "rsync",
    "sftp",
    "ftp",
    "telnet",
    "http",
    "https",
    "xh",
    "ssh",
}
READERS = {
    "cat",
    "less",
    "more",
    "head",
    "tail",
    "base64",
    "xxd",
    "od",
    "strings",
    "tar",
    "zip",
    "cp",
    "gpg",
}
KEY_USE_OPTS = {"-i", "--netrc-file", "--key", "--cert", "-E", "--cacert", "-K", "--config"}


def shell_args(args: list[str]) -> tuple[str | None, bool]:
    """(code given with -c or None, whether the shell reads its script from stdin)."""
    i, has_c, has_s = 0, False, False
    while i < len(args) and args[i][:1] in "-+" and len(args[i]) > 1:
        if args[i] == "--":
            i += 1
            break
        flags = "" if args[i].startswith("--") else args[i][1:]
        has_c, has_s = has_c or "c" in flags, has_s or "s" in flags
        i += 2 if args[i] in ("-o", "+o", "-O", "+O") else 1
    rest = args[i:]
    if has_c:
        return (rest[0] if rest else ""), False
    return None, has_s or not rest or rest[0] == "-"


def _downloads(word: str, ctx) -> bool:
    return any(posixpath.basename(w) in DOWNLOADERS for inner in ctx.inner(word) for w in _safe_split(inner))


# ----------------------------------------------------------------------------- rules
def _flags(args: list[str]) -> set[str]:
    """Short flags exploded into letters plus long flags, up to `--`."""
    out = set()
    for a in args:
        if a == "--":
            break
        if a.startswith("--"):
            out.add(a.split("=", 1)[0])
        elif a.startswith("-") and len(a) > 1:
            out.update(a[1:])
    return out


def _positionals(args: list[str]) -> list[str]:
    if "--" in args:
        i = args.index("--")
        return [a for a in args[:i] if not a.startswith("-")] + args[i + 1 :]
    return [a for a in args if not a.startswith("-") or a == "-"]


def _rm(c: Cmd):
    fl, targets = _flags(c.args), _positionals(c.args)
    if "--no-preserve-root" in fl:
        yield DANGEROUS, "rm --no-preserve-root"
    if not ({"r", "R", "--recursive"} & fl):
        crit = [t for t in targets if _norm(t) in _CRITICAL_FILES or _is_system(t)]
        yield (DANGEROUS, f"deletes system path {crit[0]}") if crit else (CAUTION, "deletes files")
        return
    broad = [t for t in targets if _is_broad(t)]
    yield (
        (DANGEROUS, f"recursive delete of a broad path ({broad[0]})")
        if broad
        else (CAUTION, "recursive delete")
    )
    for t in targets:
        if re.fullmatch(r"\$\{?\w+\}?/\*?", t) and _norm(t) != "~":
            yield CAUTION, f"recursive delete of {t}: becomes / if the variable is empty"


def _dd(c: Cmd):
    dests = [a[3:] for a in c.args if a.startswith("of=")]
    for d in dests:
        yield from write_findings(d, how="dd writes to")
    yield (CAUTION, "dd writes raw data") if dests else None


def _shred(c: Cmd):
    devices = [t for t in _positionals(c.args) if _DEVICE.match(t)]
    yield (
        (DANGEROUS, f"shreds device {devices[0]}")
        if devices
        else (CAUTION, "shreds (irrecoverably deletes) files")
    )


def _tee(c: Cmd):
    for t in _positionals(c.args):
        yield from write_findings(t, append=bool({"a", "--append"} & _flags(c.args)), how="tee writes to")


def _cp_mv(c: Cmd):
    pos = _positionals(c.args)
    if c.name == "mv":
        moved = [p for p in pos[:-1] if _is_system(p) or _norm(p) == "/"]
        yield (DANGEROUS, f"moves system directory {moved[0]}") if moved else None
        yield (CAUTION, "moves files into /dev/null") if pos[-1:] == ["/dev/null"] else None
    yield from write_findings(pos[-1], how=f"{c.name} overwrites") if len(pos) > 1 else ()


def _chmod_chown(c: Cmd):
    opts = [
        a for a in c.args if a.startswith("-") and not (c.name == "chmod" and re.fullmatch(r"-[rwxXst]+", a))
    ]
    pos = [a for a in c.args if a not in opts]
    recursive = bool({"R", "--recursive"} & _flags(opts))
    mode, targets = (pos[0] if pos else ""), pos[1:]
    system = [t for t in targets if _is_system(t)]
    world = c.name == "chmod" and bool(
        re.search(r"^[0-7]?[0-7]{2}[2367]$|(^|,)[ugo]*[ao][ugo]*[+=][^,]*w", mode)
    )
    if system and (recursive or world):
        yield DANGEROUS, f"{c.name}{' -R' if recursive else ''} {mode} on system path {system[0]}"
    yield CAUTION, f"{c.name} changes {'permissions' if c.name == 'chmod' else 'ownership'}"
    yield (CAUTION, "makes files world-writable") if world else None


def _find(c: Cmd):
    pos = []
    for a in c.args:
        if a.startswith(("-", "(", "!")) and a != "-":
            break
        pos.append(a)
    roots = [p for p in (pos or ["."]) if _is_system(p)]
    inner: list[tuple[str, str]] = [(CAUTION, "find -delete removes files")] if "-delete" in c.args else []
    for i, a in enumerate(c.args):
        if a in ("-exec", "-execdir", "-ok", "-okdir"):
            words = []
            for w in c.args[i + 1 :]:
                if w in (";", "+"):
                    break
                words.append(w)
            inner += c.ctx.command(words)
    yield from inner
    if roots and any(lvl != SAFE for lvl, _ in inner):
        yield DANGEROUS, f"find over {roots[0]} deletes or modifies files"


def _shell(c: Cmd):
    if c.name in ("eval", "source", "."):
        code = " ".join(c.args) if c.name == "eval" else None
    else:
        code = shell_args(c.args)[0]
    yield from c.ctx.script(code) if code else ()
    for op, t in c.redirects:
        yield from c.ctx.script(t) if op == "<<<" else ()
    if any(_downloads(w, c.ctx) for w in c.args + [t for _, t in c.redirects]):
        yield DANGEROUS, f"{c.name} executes a script downloaded from the network"


def _interpreter(c: Cmd):
    code = " ".join(c.args)
    if re.search(r"\bfork\b", code) and re.search(r"\b(while|for|loop|until)\b", code):
        yield DANGEROUS, "fork bomb in an inline script"
    if "-m" in c.args[:-1]:  # `python -m pip install ...` is pip's command line
        at = c.args.index("-m")
        yield from c.ctx.command(c.args[at + 1 :])
    if any(_downloads(w, c.ctx) for w in c.args + [t for _, t in c.redirects]):
        yield DANGEROUS, f"{c.name} executes a script downloaded from the network"


def _ssh(c: Cmd):
    pos = strip_options(
        c.args,
        {
            "-i",
            "-p",
            "-l",
            "-o",
            "-F",
            "-J",
            "-L",
            "-R",
            "-D",
            "-b",
            "-c",
            "-E",
            "-e",
            "-m",
            "-O",
            "-Q",
            "-S",
            "-W",
            "-w",
            "-B",
            "-I",
        },
    )
    yield from c.ctx.script(" ".join(pos[1:])) if len(pos) > 1 else ()


def _su(c: Cmd):
    yield CAUTION, "switches user (su)"
    for i, a in enumerate(c.args[:-1]):
        yield from c.ctx.script(c.args[i + 1]) if a in ("-c", "--command") else ()


def _kill(c: Cmd):
    args = list(c.args)
    if args[:1] in (["-l"], ["-L"]):
        return
    if args[:1] in (["-s"], ["-n"]):
        args = args[2:]
    elif args[:1] and args[0].startswith("-") and args[0] != "--":
        args = args[1:]
    pids = args[1:] if args[:1] == ["--"] else args
    yield (
        (DANGEROUS, "kills every process (pid -1 or init)")
        if {"-1", "1"} & set(pids)
        else (CAUTION, "kills processes")
    )


def _git(c: Cmd):
    pos = strip_options(c.args, {"-C", "-c", "--git-dir", "--work-tree", "--namespace"})
    sub, rest = (pos[0], pos[1:]) if pos else ("", [])
    fl = _flags(rest)
    if sub == "push":
        if {"f", "--force"} & fl or any(p.startswith("+") for p in _positionals(rest)):
            yield DANGEROUS, "git push --force rewrites remote history"
        elif {"--force-with-lease", "--force-if-includes", "--mirror", "--delete", "d"} & fl:
            yield CAUTION, "git push overwrites or deletes remote refs"
        elif any(p.startswith(":") for p in _positionals(rest)):
            yield CAUTION, "git push deletes a remote branch"
    checks = {
        "reset": "--hard" in fl,
        "clean": bool({"f", "--force"} & fl) and "n" not in fl,
        "checkout": "f" in fl or "." in rest,
        "restore": "--staged" not in fl,
        "branch": "D" in fl,
        "stash": bool({"drop", "clear"} & set(rest)),
        "filter-branch": True,
        "filter-repo": True,
        "reflog": "expire" in rest,
    }
    yield (CAUTION, f"git {sub} discards work or history") if checks.get(sub) else None


SQL_OPTS = {
    "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"),
    "clickhouse-client": ("-q", "--query"),
    "duckdb": ("-c", "-cmd"),
    "sqlite3": ("-cmd", "-cmd"),
}


def _sql_client(c: Cmd):
    short, long_ = SQL_OPTS[c.name]
    sql = []
    for i, a in enumerate(c.args):
        if a in (short, long_) and i + 1 < len(c.args):
            sql.append(c.args[i + 1])
        elif a.startswith(long_ + "=") or (len(short) == 2 and a.startswith(short) and len(a) > 2):
            sql.append(a.split("=", 1)[1] if a.startswith(long_ + "=") else a[2:])
    if c.name in ("sqlite3", "duckdb"):
        sql += [a for a in c.args if not a.startswith("-") and a not in sql][1:]
    for s in sql + [t for op, t in c.redirects if op == "<<<"]:
        yield from sql_findings(s)
    if {"-f", "--file"} & set(c.args) or any(op in ("<", "<<") for op, _ in c.redirects):
        yield CAUTION, f"{c.name} runs an SQL script"


def sql_findings(sql: str):
    text = re.sub(
        r"--[^\n]*|/\*.*?\*/", " ", re.sub(r"'(?:[^']|'')*'|\"[^\"]*\"|`[^`]*`", "''", sql), flags=re.S
    )
    for stmt in text.split(";"):
        words = re.findall(r"[A-Z_]+", stmt.upper())
        verb, obj = (words + ["", ""])[:2]
        if (verb == "DROP" and obj in ("TABLE", "DATABASE", "SCHEMA")) or verb == "TRUNCATE":
            yield DANGEROUS, f"SQL {verb} {obj if verb == 'DROP' else ''}".strip()
        elif verb == "DELETE" and "WHERE" not in words:
            yield DANGEROUS, "SQL DELETE without WHERE"
        elif verb in ("DELETE", "UPDATE", "DROP", "ALTER", "INSERT", "CREATE", "GRANT", "REVOKE", "REPLACE"):
            yield CAUTION, f"SQL {verb} modifies the database"


def _sub_rule(table: dict[str, tuple[str, str]], essential: frozenset = frozenset()):
    """Rule for `tool SUB ...`: the first one or two positionals select the finding."""

    def rule(c: Cmd):
        pos = _positionals(c.args)
        for key in (" ".join(pos[:2]), pos[0] if pos else ""):
            if key in table:
                yield table[key]
                if table[key] == _REMOVES and essential & set(pos[1:]):
                    yield DANGEROUS, f"removes essential system package(s) {sorted(essential & set(pos[1:]))}"
                return
        if c.name == "pacman" and any(a.startswith("-R") for a in c.args):
            yield _REMOVES
        elif c.name == "pacman" and any(
            a[:2] in ("-S", "-U") and not set(a[2:]) & set("silpgc") for a in c.args
        ):
            yield _INSTALLS

    return rule


_REMOVES, _INSTALLS = (CAUTION, "removes packages"), (CAUTION, "installs or upgrades packages")
# package changes are caution, as the generator's own rules say (installs run vendor code, change the system)
_PKG_RM = {
    **dict.fromkeys(("remove", "purge", "autoremove", "erase", "uninstall", "del", "rm"), _REMOVES),
    **dict.fromkeys(
        (
            "install",
            "i",
            "add",
            "reinstall",
            "upgrade",
            "dist-upgrade",
            "full-upgrade",
            "localinstall",
            "groupinstall",
            "update -g",
            "global add",
        ),
        _INSTALLS,
    ),
}
_ESSENTIAL = frozenset(
    {
        "libc6",
        "systemd",
        "sudo",
        "coreutils",
        "bash",
        "python3",
        "openssh-server",
        "apt",
        "dpkg",
        "glibc",
        "rpm",
        "yum",
        "dnf",
        "grub-pc",
        "linux-image-generic",
    }
)
_SYSTEMCTL = {
    **dict.fromkeys(
        ("poweroff", "reboot", "halt", "kexec", "emergency", "rescue"),
        (DANGEROUS, "systemctl takes the machine down"),
    ),
    **dict.fromkeys(
        ("stop", "disable", "mask", "restart", "kill", "isolate", "suspend", "hibernate"),
        (CAUTION, "systemctl changes running services"),
    ),
}
_DOCKER = dict.fromkeys(
    (
        "rm",
        "rmi",
        "kill",
        "stop",
        "system prune",
        "volume rm",
        "volume prune",
        "image prune",
        "image rm",
        "container prune",
        "container rm",
        "network prune",
        "builder prune",
        "compose down",
    ),
    (CAUTION, "docker removes containers, images or volumes"),
)
FIXED = {  # program -> finding whatever its arguments
    **dict.fromkeys(("shutdown", "reboot", "halt", "poweroff"), (DANGEROUS, "takes the machine down")),
    **dict.fromkeys(("mkfs", "mke2fs", "wipefs", "blkdiscard"), (DANGEROUS, "erases a disk or filesystem")),
    "killall5": (DANGEROUS, "kills every process"),
    "dropdb": (DANGEROUS, "deletes a database"),
    **dict.fromkeys(
        (
            "pkill",
            "killall",
            "rmdir",
            "unlink",
            "truncate",
            "userdel",
            "deluser",
            "usermod",
            "passwd",
            "mount",
            "umount",
            "swapoff",
            "rmmod",
            "insmod",
            "fdisk",
            "parted",
            "sfdisk",
            "sgdisk",
            "gdisk",
            "chattr",
            "setenforce",
            "visudo",
            "mkswap",
        ),
        (CAUTION, "can remove or disrupt processes, users, mounts or disks"),
    ),
}


def _firewall(c: Cmd):
    fl = _flags(c.args)
    if {"F", "X", "--flush"} & fl or "flush" in c.args:
        yield DANGEROUS, f"{c.name} flushes firewall rules"
    elif not ({"L", "S", "--list"} & fl or "list" in c.args):
        yield CAUTION, f"{c.name} changes firewall rules"


def _crontab(c: Cmd):
    fl = _flags(c.args)
    yield (DANGEROUS, "crontab -r deletes all cron jobs") if "r" in fl else None
    yield (CAUTION, "replaces the crontab") if not {"r", "l", "e"} & fl else None


RULES: dict[str, Rule] = {
    "rm": _rm,
    "dd": _dd,
    "shred": _shred,
    "tee": _tee,
    "cp": _cp_mv,
    "mv": _cp_mv,
    "find": _find,
    "chmod": _chmod_chown,
    "chown": _chmod_chown,
    "chgrp": _chmod_chown,
    "kill": _kill,
    "git": _git,
    "eval": _shell,
    "source": _shell,
    ".": _shell,
    **dict.fromkeys(SHELLS, _shell),
    **dict.fromkeys(INTERPRETERS, _interpreter),
    "ssh": _ssh,
    "su": _su,
    **dict.fromkeys(SQL_OPTS, _sql_client),
    "crontab": _crontab,
    **dict.fromkeys(("iptables", "ip6tables", "nft"), _firewall),
    "init": lambda c: [
        (DANGEROUS, "init 0/6 takes the machine down")
        if c.args[:1] in (["0"], ["6"])
        else (CAUTION, "changes the runlevel")
    ],
    "telinit": lambda c: RULES["init"](c),
    "redis-cli": lambda c: (
        [(DANGEROUS, "redis FLUSHALL/FLUSHDB wipes data")]
        if {"flushall", "flushdb"} & {a.lower() for a in c.args}
        else []
    ),
    "curl": lambda c: [(CAUTION, "HTTP DELETE request")] if {"-XDELETE", "DELETE"} & set(c.args) else [],
    "systemctl": _sub_rule(_SYSTEMCTL),
    "docker": _sub_rule(_DOCKER),
    "podman": _sub_rule(_DOCKER),
    "docker-compose": _sub_rule({"down": (CAUTION, "docker-compose down removes containers")}),
    "kubectl": _sub_rule(
        dict.fromkeys(
            ("delete", "drain", "cordon", "scale", "replace", "patch"),
            (CAUTION, "kubectl changes the cluster"),
        )
    ),
    "terraform": _sub_rule(
        {
            "destroy": (DANGEROUS, "terraform destroy tears down infrastructure"),
            "apply": (CAUTION, "terraform apply changes infrastructure"),
        }
    ),
    **dict.fromkeys(
        (
            "apt",
            "apt-get",
            "aptitude",
            "yum",
            "dnf",
            "zypper",
            "apk",
            "snap",
            "brew",
            "pip",
            "pip3",
            "pipx",
            "npm",
            "yarn",
            "pnpm",
            "gem",
            "cargo",
            "conda",
            "mamba",
            "pacman",
        ),
        _sub_rule(_PKG_RM, _ESSENTIAL),
    ),
}
