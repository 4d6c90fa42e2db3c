"""Local danger analysis of model-generated shell commands; the endpoint's label is
``combine(model_label, analyze(cmd).level)``.

Structural, not substring matching: a pre-scanner tracks quoting, pulls out ``$(...)``,
backticks and ``<(...)`` (analysed recursively) and shields quoted operator characters;
``shlex`` splits words/operators; tokens are cut into pipelines and simple commands; wrappers
(sudo, env, nohup, xargs, timeout, ...) are peeled; ``sh -c``/``eval``/``ssh host cmd``/
``find -exec`` payloads are re-analysed; each program is looked up in ``rules.RULES``.
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

from .rules import (
    DOWNLOADERS,
    FIXED,
    INTERPRETERS,
    KEY_USE_OPTS,
    NETWORK,
    READERS,
    RULES,
    SHELLS,
    SQL_OPTS,
    LEVELS,
    RANK,
    CAUTION,
    DANGEROUS,
    SAFE,
    Cmd,
    is_secret,
    shell_args,
    sql_findings,
    strip_options,
    write_findings,
)

__all__ = ["LEVELS", "Assessment", "analyze", "combine"]
_RANK = RANK
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Assessment:
    level: str
    reasons: tuple[str, ...] = ()


def combine(model_level: str | None, local: str) -> str:
    """The higher of the model's label (unknown/None counts as safe) and ours."""
    if local not in _RANK:
        raise ValueError(f"unknown local level {local!r}")
    model = model_level.strip().lower() if isinstance(model_level, str) else SAFE
    model = model if model in _RANK else SAFE
    return max(model, local, key=_RANK.__getitem__)


def analyze(command: str) -> Assessment:
    findings = _Ctx().script(command or "")
    if not findings:
        return Assessment(SAFE)
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
            return [(CAUTION, "command nesting too deep to analyse")]
        self.depth += 1
        try:
            return _analyze_text(text, self)
        finally:
            self.depth -= 1

    def command(self, words: list[str]) -> list[tuple[str, str]]:
        """Findings for one argv (e.g. a `find -exec` payload)."""
        return _cmd_findings(_build(words, [], self))

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
        ch, nxt = text[i], text[i + 1 : i + 2]
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
    tokens: list[str] = []  # operators as _Op
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
        parens = nxt.startswith("()") or tokens[i + 2 : i + 3] == [")"]
        defines = isinstance(nxt, _Op) and nxt.startswith("(") and parens
        if isinstance(name, _Op) or not (defines or (i and tokens[i - 1] == "function")):
            continue
        body: list[str] = []
        for tok in tokens[i + 2 :]:
            if not isinstance(tok, _Op) and tok.endswith("}") and body:
                break
            body.append(tok)
        calls = [t for t in body if not isinstance(t, _Op) and t.strip("{}") == name]
        if calls and any(isinstance(t, _Op) and ("|" in t or "&" in t) for t in body):
            return True
    return False


def _analyze_text(text: str, ctx: _Ctx) -> list[tuple[str, str]]:
    prepared, err, inners = _prescan(text, ctx)
    findings = [(CAUTION, err)] if err else []
    for inner in inners:
        findings += ctx.script(inner)
    try:
        tokens = _lex(prepared)
    except ValueError as exc:  # e.g. a trailing lone backslash
        findings.append((CAUTION, f"could not parse the command: {exc}"))
        tokens = prepared.translate(_UNPROTECT).split()
    if _is_fork_bomb(tokens):
        findings.append((DANGEROUS, "fork bomb: a function that recursively spawns itself"))
    for pipeline in _split(tokens):
        cmds = [_build(words, redirs, ctx) for words, redirs in pipeline]
        for cmd in cmds:
            findings += _cmd_findings(cmd)
        findings += _pipeline_findings(cmds)
    return findings


# ----------------------------------------------------------------------------- commands
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_KEYWORDS = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "!",
    "{",
    "}",
    "function",
    "esac",
    "for",
    "case",
    "select",
    "in",
}
_ELEVATORS = {"sudo", "doas", "pkexec", "run0"}
_WRAPPERS = {  # wrapper -> options that take a separate value
    "sudo": {
        "-u",
        "-g",
        "-h",
        "-p",
        "-C",
        "-D",
        "-r",
        "-t",
        "-U",
        "-T",
        "--user",
        "--group",
        "--host",
        "--prompt",
        "--chdir",
        "--role",
        "--type",
        "--other-user",
    },
    "doas": {"-u", "-C"},
    "pkexec": {"--user"},
    "run0": {"--user", "-u"},
    "env": {"-u", "-C", "--unset", "--chdir"},
    "nohup": set(),
    "time": {"-f", "-o"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p"},
    "stdbuf": {"-i", "-o", "-e"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "command": set(),
    "exec": {"-a"},
    "builtin": set(),
    "setsid": set(),
    "unbuffer": set(),
    "torsocks": set(),
    "proxychains4": set(),
    "xargs": {
        "-I",
        "-n",
        "-P",
        "-L",
        "-d",
        "-a",
        "-s",
        "-E",
        "--max-args",
        "--max-procs",
        "--delimiter",
        "--arg-file",
        "--max-lines",
    },
    "watch": {"-n", "--interval"},
}


def _build(words: list[str], redirects, ctx: _Ctx) -> Cmd:
    argv, elevated = list(words), ""
    while argv:
        head = posixpath.basename(argv[0])
        if _ASSIGN.match(argv[0]) or argv[0] in _KEYWORDS:
            argv = argv[1:]
        elif head == "command" and argv[1:2] in (["-v"], ["-V"]):
            argv = []
        elif head in _WRAPPERS:
            elevated = head if head in _ELEVATORS else elevated
            argv = strip_options(argv[1:], _WRAPPERS[head])
            argv = argv[1:] if head == "timeout" else argv  # the duration
            argv = ["sh", "-c", " ".join(argv)] if head == "watch" and argv else argv
        else:
            break
    name = posixpath.basename(argv[0]) if argv else ""
    return Cmd(name, argv[1:], redirects, ctx, elevated)


def _cmd_findings(c: Cmd) -> list[tuple[str, str]]:
    out = [(CAUTION, f"runs with elevated privileges ({c.elevated})")] if c.elevated else []
    for op, target in c.redirects:
        if ">" in op and not (op.endswith("&") and target.isdigit()):
            out += write_findings(target, append=">>" in op, how="redirect into")
    name = "mkfs" if c.name.startswith("mkfs.") else c.name
    if name in FIXED:
        out.append((FIXED[name][0], f"{name}: {FIXED[name][1]}"))
    out += [f for f in RULES.get(name, lambda _: ())(c) if f]
    if c.name in READERS and any(is_secret(a, c.ctx) for a in c.args):
        out.append((CAUTION, "reads a credential file"))
    return out + _exfil_findings(c)


def _reads_stdin_code(c: Cmd) -> bool:
    if c.name in SHELLS:
        return shell_args(c.args)[1]
    if c.name in INTERPRETERS:
        code_flags = {"-c", "-e", "-E", "-m", "-r", "-p", "--eval", "--print"}
        positional = [a for a in c.args if not a.startswith("-") or a == "-"]
        return not code_flags & set(c.args) and (not positional or positional[0] == "-")
    return False


def _secret_inputs(c: Cmd) -> list[str]:
    args = [a for i, a in enumerate(c.args) if i == 0 or c.args[i - 1] not in KEY_USE_OPTS]
    args = [a for a in args if a not in KEY_USE_OPTS]
    words = args + [t for op, t in c.redirects if "<" in op]
    return [w for w in words if is_secret(w, c.ctx)]


def _exfil_findings(c: Cmd):
    if c.name not in NETWORK:
        return []
    secrets = [t for op, t in c.redirects if "<" in op and is_secret(t, c.ctx)]
    if c.name != "ssh":
        remote = c.name not in ("scp", "rsync", "sftp") or any(re.match(r"^[\w.@-]+:", a) for a in c.args)
        secrets += _secret_inputs(c) if remote else []
    return [
        (DANGEROUS, f"sends credentials ({s}) over the network with {c.name}") for s in dict.fromkeys(secrets)
    ]


def _pipeline_findings(cmds: list[Cmd]):
    out = []
    for i, c in enumerate(cmds[1:], 1):
        before = cmds[:i]
        if _reads_stdin_code(c):
            if any(p.name in DOWNLOADERS for p in before):
                out.append((DANGEROUS, f"pipes a download straight into {c.name}"))
            for p in before:
                out += c.ctx.script(" ".join(p.args)) if p.name in ("echo", "printf") else []
        if c.name in SQL_OPTS:
            out += [f for p in before if p.name in ("echo", "printf") for f in sql_findings(" ".join(p.args))]
        if c.name in NETWORK and any(_secret_inputs(p) for p in before):
            out.append((DANGEROUS, f"pipes credential files to the network with {c.name}"))
    return out
