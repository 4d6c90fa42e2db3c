"""Summarise a py-spy raw profile (collapsed stacks, one `frame;frame;... count` a line): the
functions that take the most samples on their own (self) and with what they call (inclusive).

  .venv/bin/python bench/profile_summary.py bench/results/profile-slow-stream-c500.stacks [N]
"""

import sys
from collections import Counter
from pathlib import Path


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _name(frame: str) -> str:
    """`func (path/to/module.py:12)` → `func (module.py)`: lines of one function counted together."""
    func, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{func} ({file})" if file else func


def summary(path: Path, top: int = 25) -> str:
    stacks = load(path)
    total = sum(count for _, count in stacks) or 1
    own, inclusive = Counter(), Counter()
    for frames, count in stacks:
        names = [_name(f) for f in frames]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    lines = [f"{total} samples (on CPU)", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
