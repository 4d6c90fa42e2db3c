"""Local danger analysis of model-generated shell commands; the endpoint's label is
``combine(model_label, analyze(cmd).level)``.

Structural, not substring matching: a pre-scanner tracks quoting, pulls out ``$(...)``,
backticks and ``<(...)`` (analysed recursively) and shields quoted operator characters;
``shlex`` splits words/operators; tokens are cut into pipelines and simple commands; wrappers
(sudo, env, nohup, xargs, timeout, ...) are peeled; ``sh -c``/``eval``/``ssh host cmd``/
``find -exec`` payloads are re-analysed; each program is looked up in ``_RULES``.
Decisions: ``git push --force`` dangerous, ``--force-with-lease`` caution; ``iptables -F``
dangerous (drops the firewall, or locks out remote sessions under a DROP policy); sudo and
chmod/chown are at least caution; reading a credential file is caution, sending one over
the network dangerous; heredoc bodies are analysed as commands (conservative).
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

LEVELS = ("safe", "caution", "dangerous")
S, C, D = LEVELS
_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Assessment:
    level: str
    reasons: tuple[str, ...] = ()


def combine(model_level: str | None, local: str) -> str:
    """The higher of the model's label (unknown/None counts as safe) and ours."""
    if local not in _RANK:
        raise ValueError(f"unknown local level {local!r}")
    model = model_level.strip().lower() if isinstance(model_level, str) else S
    model = model if model in _RANK else S
    return max(model, local, key=_RANK.__getitem__)


def analyze(command: str) -> Assessment:
    findings = _Ctx().script(command or "")
    if not findings:
        return Assessment(S)
    findings.sort(key=lambda f: -_RANK[f[0]])  # stable: most severe reasons first
    reasons = tuple(dict.fromkeys(reason for _, reason in findings))
    return Assessment(findings[0][0], reasons)


# ----------------------------------------------------------------------------- lexing
_PUNCT = "();<>|&"
_PROTECT = {ch: chr(0xE000 + i) for i, ch in enumerate(_PUNCT + "\n")}
_UNPROTECT = str.maketrans({v: k for k, v in _PROTECT.items()})
_SUB = "__GPQ_SUB_{}__"
_SUB_RE = re.compile(r"__GPQ_SUB_(\d+)__")


class _Op(str):
    """An unquoted shell operator token (as opposed to a word that happens to be ';')."""


@dataclass
class _Ctx:
    subs: list[str] = field(default_factory=list)
    depth: int = 0

    def script(self, text: str) -> list[tuple[str, str]]:
        if self.depth >= _MAX_DEPTH:
            return [(C, "command nesting too deep to analyse")]
        self.depth += 1
        try:
            return _analyze_text(text, self)
        finally:
            self.depth -= 1

    def inner(self, word: str) -> list[str]:
        return [self.subs[int(m)] for m in _SUB_RE.findall(word) if int(m) < len(self.subs)]


def _match_close(text: str, i: int, close: str) -> int:
    """Index of the `close` char ending a construct whose body starts at i (-1 if none)."""
    depth, quote = 1, None
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"" and close == ")":
            quote = ch
        elif close == ")" and ch == "(":
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _substitution(text: str, i: int, ctx: _Ctx) -> tuple[str, int, str | None]:
    """Store the `$(...)`/`<(...)`/backtick body starting at i; return (placeholder, end, error)."""
    tick = text[i] == "`"
    start = i + (1 if tick else 2)
    end, err = _match_close(text, start, "`" if tick else ")"), None
    if end < 0:
        err, end = "unbalanced command substitution", len(text)
    ctx.subs.append(text[start:end])
    return _SUB.format(len(ctx.subs) - 1), end, err


def _prescan(text: str, ctx: _Ctx) -> tuple[str, str | None, list[str]]:
    """Replace substitutions by placeholders, protect quoted operators, drop comments."""
    out, first, err, quote, i = [], len(ctx.subs), None, None, 0
    while i < len(text):
        ch, nxt = text[i], text[i + 1:i + 2]
        if quote == "'":
            quote = None if ch == "'" else quote
            out.append(_PROTECT.get(ch, ch))
        elif ch == "\\" and nxt:
            out.append("" if nxt == "\n" else ch + _PROTECT.get(nxt, nxt))
            i += 1
        elif (ch == "$" or (ch in "<>" and not quote)) and nxt == "(" or ch == "`":
            placeholder, i, sub_err = _substitution(text, i, ctx)
            out.append(placeholder)
            err = err or sub_err
        elif quote == '"':
            quote = None if ch == '"' else quote
            out.append(_PROTECT.get(ch, ch))
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "#" and (i == 0 or text[i - 1] in " \t\n;&|()"):
            i = (text.find("\n", i) % (len(text) + 1)) - 1  # to the newline, or the end
        else:
            out.append(" ; " if ch == "\n" else ch)
        i += 1
    if quote:
        err = "unbalanced quotes: the command could not be parsed reliably"
        out.append(quote)
    return "".join(out), err, ctx.subs[first:]


def _lex(prepared: str) -> list[str]:
    lexer = shlex.shlex(prepared, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, ""
    tokens = []
    for tok in lexer:
        if tok and all(ch in _PUNCT for ch in tok):
            tokens.append(_Op(tok))
        else:
            tokens.append(tok.translate(_UNPROTECT))
    return tokens


def _split(tokens: list[str]):
    """Yield pipelines: lists of (words, redirects) simple commands."""
    pipeline, words, redirs, i = [], [], [], 0
    while i < len(tokens):
        tok = tokens[i]
        core = tok.strip("()") if isinstance(tok, _Op) else None
        if core is None:
            words.append(tok)
        elif "<" in core or ">" in core:
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            redirs.append((core, "" if isinstance(target, _Op) else target))
            i += 0 if isinstance(target, _Op) else 1
        elif core in ("|", "|&"):
            pipeline.append((words, redirs))
            words, redirs = [], []
        else:
            pipeline.append((words, redirs))
            yield pipeline
            pipeline, words, redirs = [], [], []
        i += 1
    pipeline.append((words, redirs))
    yield pipeline


def _is_fork_bomb(tokens: list[str]) -> bool:
    for i, name in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        parens = nxt.startswith("()") or tokens[i + 2:i + 3] == [")"]
        defines = isinstance(nxt, _Op) and nxt.startswith("(") and parens
        if isinstance(name, _Op) or not (defines or (i and tokens[i - 1] == "function")):
            continue
        body = []
        for tok in tokens[i + 2:]:
            if not isinstance(tok, _Op) and tok.endswith("}") and body:
                break
            body.append(tok)
        calls = [t for t in body if not isinstance(t, _Op) and t.strip("{}") == name]
        if calls and any(isinstance(t, _Op) and ("|" in t or "&" in t) for t in body):
            return True
    return False


def _analyze_text(text: str, ctx: _Ctx) -> list[tuple[str, str]]:
    prepared, err, inners = _prescan(text, ctx)
    findings = [(C, err)] if err else []
    for inner in inners:
        findings += ctx.script(inner)
    try:
        tokens = _lex(prepared)
    except ValueError as exc:  # e.g. a trailing lone backslash
        findings.append((C, f"could not parse the command: {exc}"))
        tokens = prepared.translate(_UNPROTECT).split()
    if _is_fork_bomb(tokens):
        findings.append((D, "fork bomb: a function that recursively spawns itself"))
    for pipeline in _split(tokens):
        cmds = [_build(words, redirs, ctx) for words, redirs in pipeline]
        for cmd in cmds:
            findings += _cmd_findings(cmd)
        findings += _pipeline_findings(cmds)
    return findings


# ----------------------------------------------------------------------------- commands
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
             "function", "esac", "for", "case", "select", "in"}
_ELEVATORS = {"sudo", "doas", "pkexec", "run0"}
_WRAPPERS = {  # wrapper -> options that take a separate value
    "sudo": {"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
             "--host", "--prompt", "--chdir", "--role", "--type", "--other-user"},
    "doas": {"-u", "-C"}, "pkexec": {"--user"}, "run0": {"--user", "-u"},
    "env": {"-u", "-C", "--unset", "--chdir"}, "nohup": set(), "time": {"-f", "-o"},
    "nice": {"-n", "--adjustment"}, "ionice": {"-c", "-n", "-p"}, "stdbuf": {"-i", "-o", "-e"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"}, "command": set(), "exec": {"-a"},
    "builtin": set(), "setsid": set(), "unbuffer": set(), "torsocks": set(), "proxychains4": set(),
    "xargs": {"-I", "-n", "-P", "-L", "-d", "-a", "-s", "-E", "--max-args", "--max-procs",
              "--delimiter", "--arg-file", "--max-lines"},
    "watch": {"-n", "--interval"},
}


@dataclass
class _Cmd:
    name: str
    args: list[str]
    redirects: list[tuple[str, str]]
    ctx: _Ctx
    elevated: str = ""


def _strip_options(args: list[str], valued: set[str]) -> list[str]:
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            return args[i + 1:]
        i += 2 if args[i] in valued else 1
    return args[i:]


def _build(words: list[str], redirects, ctx: _Ctx) -> _Cmd:
    argv, elevated = list(words), ""
    while argv:
        head = posixpath.basename(argv[0])
        if _ASSIGN.match(argv[0]) or argv[0] in _KEYWORDS:
            argv = argv[1:]
        elif head == "command" and argv[1:2] in (["-v"], ["-V"]):
            argv = []
        elif head in _WRAPPERS:
            elevated = head if head in _ELEVATORS else elevated
            argv = _strip_options(argv[1:], _WRAPPERS[head])
            argv = argv[1:] if head == "timeout" else argv  # the duration
            argv = ["sh", "-c", " ".join(argv)] if head == "watch" and argv else argv
        else:
            break
    name = posixpath.basename(argv[0]) if argv else ""
    return _Cmd(name, argv[1:], redirects, ctx, elevated)


def _cmd_findings(c: _Cmd) -> list[tuple[str, str]]:
    out = [(C, f"runs with elevated privileges ({c.elevated})")] if c.elevated else []
    for op, target in c.redirects:
        if ">" in op and not (op.endswith("&") and target.isdigit()):
            out += _write_findings(target, append=">>" in op, how="redirect into")
    name = "mkfs" if c.name.startswith("mkfs.") else c.name
    if name in _FIXED:
        out.append((_FIXED[name][0], f"{name}: {_FIXED[name][1]}"))
    out += [f for f in _RULES.get(name, lambda _: ())(c) if f]
    if c.name in _READERS and any(_is_secret(a, c.ctx) for a in c.args):
        out.append((C, "reads a credential file"))
    return out + _exfil_findings(c)


# ----------------------------------------------------------------------------- paths
_DEVICE = re.compile(r"^/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|r?disk\d|mmcblk\d|md\d|dm-\d|"
                     r"mapper/|loop\d|sr\d|mem$|kmem$|port$)|^/proc/sysrq-trigger$")
_CRITICAL_FILES = {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers",
                   "/etc/fstab", "/boot/grub/grub.cfg"}
_SYSTEM_DIRS = {"/", "~", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64",
                "/opt", "/proc", "/root", "/sbin", "/srv", "/sys", "/usr", "/var", "/var/lib",
                "/snap", "/mnt", "/media", "/System", "/Library", "/Applications", "/Users", "/private"}
_SECRET_GLOBS = ("*.ssh", "*.ssh/id_*", "*.ssh/*_key", "/etc/ssh/ssh_host_*", "*.aws", "*.aws/credentials",
                 "*.gnupg", "*.gnupg/*", "/etc/shadow", "/etc/gshadow", "*.netrc", "*.pgpass",
                 "*.git-credentials", "*.docker/config.json", "*.kube/config", "*.npmrc", "*.pypirc",
                 ".env", "*/.env", ".env.*", "*/.env.*", "*.pem", "*.key", "*.config/gcloud*")
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
    return (p in _SYSTEM_DIRS or p in _CRITICAL_FILES or bool(re.fullmatch(r"/(home|Users)/[^/]+", p))
            or (p.startswith("/usr/") and p.count("/") == 2))


def _is_broad(path: str) -> bool:
    p = _norm(path)
    return _is_system(p) or p in {"*", ".*"} or all(seg in (".", "..") for seg in p.split("/"))


def _write_findings(target: str, append: bool = False, how: str = "writes to"):
    p = _norm(target)
    if _DEVICE.match(p):
        return [(D, f"{how} raw device {target}")]
    if p in _CRITICAL_FILES or p.startswith("/boot/"):
        return [(C if append else D, f"{how} critical system file {target}")]
    if re.match(r"/(etc|usr|bin|sbin|lib\w*)/", p):
        return [(C, f"{how} system path {target}")]
    return []


def _is_secret(word: str, ctx: _Ctx) -> bool:
    if any(any(_is_secret(w, ctx) for w in _safe_split(inner)) for inner in ctx.inner(word)):
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
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "tcsh", "csh"}
_INTERPRETERS = {"python", "python2", "python3", "perl", "ruby", "node", "php", "lua"}
_DOWNLOADERS = {"curl", "wget", "fetch", "http", "https", "xh", "aria2c"}
_NETWORK = {"curl", "wget", "nc", "ncat", "netcat", "socat", "scp", "rsync", "sftp", "ftp",
            "telnet", "http", "https", "xh", "ssh"}
_READERS = {"cat", "less", "more", "head", "tail", "base64", "xxd", "od", "strings", "tar", "zip", "cp", "gpg"}
_KEY_USE_OPTS = {"-i", "--netrc-file", "--key", "--cert", "-E", "--cacert", "-K", "--config"}


def _shell_args(args: list[str]) -> tuple[str | None, bool]:
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


def _reads_stdin_code(c: _Cmd) -> bool:
    if c.name in _SHELLS:
        return _shell_args(c.args)[1]
    if c.name in _INTERPRETERS:
        code_flags = {"-c", "-e", "-E", "-m", "-r", "-p", "--eval", "--print"}
        positional = [a for a in c.args if not a.startswith("-") or a == "-"]
        return not code_flags & set(c.args) and (not positional or positional[0] == "-")
    return False


def _downloads(word: str, ctx: _Ctx) -> bool:
    return any(posixpath.basename(w) in _DOWNLOADERS for inner in ctx.inner(word) for w in _safe_split(inner))


def _secret_inputs(c: _Cmd) -> list[str]:
    args = [a for i, a in enumerate(c.args) if i == 0 or c.args[i - 1] not in _KEY_USE_OPTS]
    args = [a for a in args if a not in _KEY_USE_OPTS]
    words = args + [t for op, t in c.redirects if "<" in op]
    return [w for w in words if _is_secret(w, c.ctx)]


def _exfil_findings(c: _Cmd):
    if c.name not in _NETWORK:
        return []
    secrets = [t for op, t in c.redirects if "<" in op and _is_secret(t, c.ctx)]
    if c.name != "ssh":
        remote = c.name not in ("scp", "rsync", "sftp") or any(re.match(r"^[\w.@-]+:", a) for a in c.args)
        secrets += _secret_inputs(c) if remote else []
    return [(D, f"sends credentials ({s}) over the network with {c.name}") for s in dict.fromkeys(secrets)]


def _pipeline_findings(cmds: list[_Cmd]):
    out = []
    for i, c in enumerate(cmds[1:], 1):
        before = cmds[:i]
        if _reads_stdin_code(c):
            if any(p.name in _DOWNLOADERS for p in before):
                out.append((D, f"pipes a download straight into {c.name}"))
            for p in before:
                out += c.ctx.script(" ".join(p.args)) if p.name in ("echo", "printf") else []
        if c.name in _SQL_OPTS:
            out += [f for p in before if p.name in ("echo", "printf") for f in _sql_findings(" ".join(p.args))]
        if c.name in _NETWORK and any(_secret_inputs(p) for p in before):
            out.append((D, f"pipes credential files to the network with {c.name}"))
    return out


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
        return [a for a in args[:i] if not a.startswith("-")] + args[i + 1:]
    return [a for a in args if not a.startswith("-") or a == "-"]


def _rm(c: _Cmd):
    fl, targets = _flags(c.args), _positionals(c.args)
    if "--no-preserve-root" in fl:
        yield D, "rm --no-preserve-root"
    if not ({"r", "R", "--recursive"} & fl):
        crit = [t for t in targets if _norm(t) in _CRITICAL_FILES or _is_system(t)]
        yield (D, f"deletes system path {crit[0]}") if crit else (C, "deletes files")
        return
    broad = [t for t in targets if _is_broad(t)]
    yield (D, f"recursive delete of a broad path ({broad[0]})") if broad else (C, "recursive delete")
    for t in targets:
        if re.fullmatch(r"\$\{?\w+\}?/\*?", t) and _norm(t) != "~":
            yield C, f"recursive delete of {t}: becomes / if the variable is empty"


def _dd(c: _Cmd):
    dests = [a[3:] for a in c.args if a.startswith("of=")]
    for d in dests:
        yield from _write_findings(d, how="dd writes to")
    yield (C, "dd writes raw data") if dests else None


def _shred(c: _Cmd):
    devices = [t for t in _positionals(c.args) if _DEVICE.match(t)]
    yield (D, f"shreds device {devices[0]}") if devices else (C, "shreds (irrecoverably deletes) files")


def _tee(c: _Cmd):
    for t in _positionals(c.args):
        yield from _write_findings(t, append=bool({"a", "--append"} & _flags(c.args)), how="tee writes to")


def _cp_mv(c: _Cmd):
    pos = _positionals(c.args)
    if c.name == "mv":
        moved = [p for p in pos[:-1] if _is_system(p) or _norm(p) == "/"]
        yield (D, f"moves system directory {moved[0]}") if moved else None
        yield (C, "moves files into /dev/null") if pos[-1:] == ["/dev/null"] else None
    yield from _write_findings(pos[-1], how=f"{c.name} overwrites") if len(pos) > 1 else ()


def _chmod_chown(c: _Cmd):
    opts = [a for a in c.args if a.startswith("-") and not (c.name == "chmod" and re.fullmatch(r"-[rwxXst]+", a))]
    pos = [a for a in c.args if a not in opts]
    recursive = bool({"R", "--recursive"} & _flags(opts))
    mode, targets = (pos[0] if pos else ""), pos[1:]
    system = [t for t in targets if _is_system(t)]
    world = c.name == "chmod" and bool(re.search(r"^[0-7]?[0-7]{2}[2367]$|(^|,)[ugo]*[ao][ugo]*[+=][^,]*w", mode))
    if system and (recursive or world):
        yield D, f"{c.name}{' -R' if recursive else ''} {mode} on system path {system[0]}"
    yield C, f"{c.name} changes {'permissions' if c.name == 'chmod' else 'ownership'}"
    yield (C, "makes files world-writable") if world else None


def _find(c: _Cmd):
    pos = []
    for a in c.args:
        if a.startswith(("-", "(", "!")) and a != "-":
            break
        pos.append(a)
    roots = [p for p in (pos or ["."]) if _is_system(p)]
    inner: list[tuple[str, str]] = [(C, "find -delete removes files")] if "-delete" in c.args else []
    for i, a in enumerate(c.args):
        if a in ("-exec", "-execdir", "-ok", "-okdir"):
            words = []
            for w in c.args[i + 1:]:
                if w in (";", "+"):
                    break
                words.append(w)
            inner += _cmd_findings(_build(words, [], c.ctx))
    yield from inner
    if roots and any(lvl != S for lvl, _ in inner):
        yield D, f"find over {roots[0]} deletes or modifies files"


def _shell(c: _Cmd):
    if c.name in ("eval", "source", "."):
        code = " ".join(c.args) if c.name == "eval" else None
    else:
        code = _shell_args(c.args)[0]
    yield from c.ctx.script(code) if code else ()
    for op, t in c.redirects:
        yield from c.ctx.script(t) if op == "<<<" else ()
    if any(_downloads(w, c.ctx) for w in c.args + [t for _, t in c.redirects]):
        yield D, f"{c.name} executes a script downloaded from the network"


def _interpreter(c: _Cmd):
    code = " ".join(c.args)
    if re.search(r"\bfork\b", code) and re.search(r"\b(while|for|loop|until)\b", code):
        yield D, "fork bomb in an inline script"
    if any(_downloads(w, c.ctx) for w in c.args + [t for _, t in c.redirects]):
        yield D, f"{c.name} executes a script downloaded from the network"


def _ssh(c: _Cmd):
    pos = _strip_options(c.args, {"-i", "-p", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c",
                                  "-E", "-e", "-m", "-O", "-Q", "-S", "-W", "-w", "-B", "-I"})
    yield from c.ctx.script(" ".join(pos[1:])) if len(pos) > 1 else ()


def _su(c: _Cmd):
    yield C, "switches user (su)"
    for i, a in enumerate(c.args[:-1]):
        yield from c.ctx.script(c.args[i + 1]) if a in ("-c", "--command") else ()


def _kill(c: _Cmd):
    args = list(c.args)
    if args[:1] in (["-l"], ["-L"]):
        return
    if args[:1] in (["-s"], ["-n"]):
        args = args[2:]
    elif args[:1] and args[0].startswith("-") and args[0] != "--":
        args = args[1:]
    pids = args[1:] if args[:1] == ["--"] else args
    yield (D, "kills every process (pid -1 or init)") if {"-1", "1"} & set(pids) else (C, "kills processes")


def _git(c: _Cmd):
    pos = _strip_options(c.args, {"-C", "-c", "--git-dir", "--work-tree", "--namespace"})
    sub, rest = (pos[0], pos[1:]) if pos else ("", [])
    fl = _flags(rest)
    if sub == "push":
        if {"f", "--force"} & fl or any(p.startswith("+") for p in _positionals(rest)):
            yield D, "git push --force rewrites remote history"
        elif {"--force-with-lease", "--force-if-includes", "--mirror", "--delete", "d"} & fl:
            yield C, "git push overwrites or deletes remote refs"
        elif any(p.startswith(":") for p in _positionals(rest)):
            yield C, "git push deletes a remote branch"
    checks = {"reset": "--hard" in fl, "clean": bool({"f", "--force"} & fl) and "n" not in fl,
              "checkout": "f" in fl or "." in rest, "restore": "--staged" not in fl,
              "branch": "D" in fl, "stash": bool({"drop", "clear"} & set(rest)),
              "filter-branch": True, "filter-repo": True, "reflog": "expire" in rest}
    yield (C, f"git {sub} discards work or history") if checks.get(sub) else None


_SQL_OPTS = {"psql": ("-c", "--command"), "mysql": ("-e", "--execute"), "mariadb": ("-e", "--execute"),
             "clickhouse-client": ("-q", "--query"), "duckdb": ("-c", "-cmd"), "sqlite3": ("-cmd", "-cmd")}


def _sql_client(c: _Cmd):
    short, long_ = _SQL_OPTS[c.name]
    sql = []
    for i, a in enumerate(c.args):
        if a in (short, long_) and i + 1 < len(c.args):
            sql.append(c.args[i + 1])
        elif a.startswith(long_ + "=") or (len(short) == 2 and a.startswith(short) and len(a) > 2):
            sql.append(a.split("=", 1)[1] if a.startswith(long_ + "=") else a[2:])
    if c.name in ("sqlite3", "duckdb"):
        sql += [a for a in c.args if not a.startswith("-") and a not in sql][1:]
    for s in sql + [t for op, t in c.redirects if op == "<<<"]:
        yield from _sql_findings(s)
    if {"-f", "--file"} & set(c.args) or any(op in ("<", "<<") for op, _ in c.redirects):
        yield C, f"{c.name} runs an SQL script"


def _sql_findings(sql: str):
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", re.sub(r"'(?:[^']|'')*'|\"[^\"]*\"|`[^`]*`", "''", sql), flags=re.S)
    for stmt in text.split(";"):
        words = re.findall(r"[A-Z_]+", stmt.upper())
        verb, obj = (words + ["", ""])[:2]
        if (verb == "DROP" and obj in ("TABLE", "DATABASE", "SCHEMA")) or verb == "TRUNCATE":
            yield D, f"SQL {verb} {obj if verb == 'DROP' else ''}".strip()
        elif verb == "DELETE" and "WHERE" not in words:
            yield D, "SQL DELETE without WHERE"
        elif verb in ("DELETE", "UPDATE", "DROP", "ALTER", "INSERT", "CREATE", "GRANT", "REVOKE", "REPLACE"):
            yield C, f"SQL {verb} modifies the database"


def _sub_rule(table: dict[str, tuple[str, str]], essential: frozenset = frozenset()):
    """Rule for `tool SUB ...`: the first one or two positionals select the finding."""
    def rule(c: _Cmd):
        pos = _positionals(c.args)
        for key in (" ".join(pos[:2]), pos[0] if pos else ""):
            if key in table:
                yield table[key]
                if table[key][0] != S and essential & set(pos[1:]):
                    yield D, f"removes essential system package(s) {sorted(essential & set(pos[1:]))}"
                return
        if c.name == "pacman" and any(a.startswith("-R") for a in c.args):
            yield C, "removes packages"
    return rule


_PKG_RM = dict.fromkeys(("remove", "purge", "autoremove", "erase", "uninstall", "del", "rm"),
                        (C, "removes packages"))
_ESSENTIAL = frozenset({"libc6", "systemd", "sudo", "coreutils", "bash", "python3", "openssh-server",
                        "apt", "dpkg", "glibc", "rpm", "yum", "dnf", "grub-pc", "linux-image-generic"})
_SYSTEMCTL = {**dict.fromkeys(("poweroff", "reboot", "halt", "kexec", "emergency", "rescue"),
                              (D, "systemctl takes the machine down")),
              **dict.fromkeys(("stop", "disable", "mask", "restart", "kill", "isolate", "suspend", "hibernate"),
                              (C, "systemctl changes running services"))}
_DOCKER = dict.fromkeys(("rm", "rmi", "kill", "stop", "system prune", "volume rm", "volume prune", "image prune",
                         "image rm", "container prune", "container rm", "network prune", "builder prune",
                         "compose down"), (C, "docker removes containers, images or volumes"))
_FIXED = {  # program -> finding whatever its arguments
    **dict.fromkeys(("shutdown", "reboot", "halt", "poweroff"), (D, "takes the machine down")),
    **dict.fromkeys(("mkfs", "mke2fs", "wipefs", "blkdiscard"), (D, "erases a disk or filesystem")),
    "killall5": (D, "kills every process"), "dropdb": (D, "deletes a database"),
    **dict.fromkeys(("pkill", "killall", "rmdir", "unlink", "truncate", "userdel", "deluser", "usermod", "passwd",
                     "mount", "umount", "swapoff", "rmmod", "insmod", "fdisk", "parted", "sfdisk", "sgdisk",
                     "gdisk", "chattr", "setenforce", "visudo", "mkswap"),
                    (C, "can remove or disrupt processes, users, mounts or disks")),
}


def _firewall(c: _Cmd):
    fl = _flags(c.args)
    if {"F", "X", "--flush"} & fl or "flush" in c.args:
        yield D, f"{c.name} flushes firewall rules"
    elif not ({"L", "S", "--list"} & fl or "list" in c.args):
        yield C, f"{c.name} changes firewall rules"


def _crontab(c: _Cmd):
    fl = _flags(c.args)
    yield (D, "crontab -r deletes all cron jobs") if "r" in fl else None
    yield (C, "replaces the crontab") if not {"r", "l", "e"} & fl else None


_RULES = {
    "rm": _rm, "dd": _dd, "shred": _shred, "tee": _tee, "cp": _cp_mv, "mv": _cp_mv, "find": _find,
    "chmod": _chmod_chown, "chown": _chmod_chown, "chgrp": _chmod_chown, "kill": _kill, "git": _git,
    "eval": _shell, "source": _shell, ".": _shell, **dict.fromkeys(_SHELLS, _shell),
    **dict.fromkeys(_INTERPRETERS, _interpreter), "ssh": _ssh, "su": _su,
    **dict.fromkeys(_SQL_OPTS, _sql_client), "crontab": _crontab,
    **dict.fromkeys(("iptables", "ip6tables", "nft"), _firewall),
    "init": lambda c: [(D, "init 0/6 takes the machine down") if c.args[:1] in (["0"], ["6"])
                       else (C, "changes the runlevel")],
    "telinit": lambda c: _RULES["init"](c),
    "redis-cli": lambda c: [(D, "redis FLUSHALL/FLUSHDB wipes data")]
    if {"flushall", "flushdb"} & {a.lower() for a in c.args} else [],
    "curl": lambda c: [(C, "HTTP DELETE request")] if {"-XDELETE", "DELETE"} & set(c.args) else [],
    "systemctl": _sub_rule(_SYSTEMCTL), "docker": _sub_rule(_DOCKER), "podman": _sub_rule(_DOCKER),
    "docker-compose": _sub_rule({"down": (C, "docker-compose down removes containers")}),
    "kubectl": _sub_rule(dict.fromkeys(("delete", "drain", "cordon", "scale", "replace", "patch"),
                                       (C, "kubectl changes the cluster"))),
    "terraform": _sub_rule({"destroy": (D, "terraform destroy tears down infrastructure"),
                            "apply": (C, "terraform apply changes infrastructure")}),
    **dict.fromkeys(("apt", "apt-get", "aptitude", "yum", "dnf", "zypper", "apk", "snap", "brew", "pip", "pip3",
                     "pipx", "npm", "yarn", "pnpm", "gem", "cargo", "conda", "mamba", "pacman"),
                    _sub_rule(_PKG_RM, _ESSENTIAL)),
}
