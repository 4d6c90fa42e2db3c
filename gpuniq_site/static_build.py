"""`collectstatic` only when a static source changed: hashing and compressing (gzip + brotli) every
file of every app takes tens of seconds, too long to pay on each `make run` and test session."""

import hashlib
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command

STAMP = "gpuniq-sources.sha256"


def sources_fingerprint() -> str:
    """Names, sizes and modification times of every file the finders see (cheap: no file is read)."""
    digest = hashlib.sha256()
    for finder in get_finders():
        for path, storage in sorted(finder.list([]), key=lambda item: item[0]):
            stat = Path(storage.path(path)).stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def collect_if_changed() -> bool:
    """Run collectstatic when the sources differ from the last collected set; True when it ran."""
    root = Path(settings.STATIC_ROOT)
    stamp, fingerprint = root / STAMP, sources_fingerprint()
    manifest = root / "staticfiles.json"
    if manifest.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return False
    call_command("collectstatic", verbosity=0, interactive=False)
    stamp.write_text(fingerprint)
    return True
