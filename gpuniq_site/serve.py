"""`make run`: prepare the embedded default and serve it (ASGI server + Celery worker).

Migrates, loads the catalog, makes sure a demo user with $5 exists, prints a fresh demo key
(earlier demo keys are revoked), then runs uvicorn and a Celery worker with beat until Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time

DEMO_EMAIL = "demo@gpuniq.local"
DEMO_CREDIT = "5"
DEMO_KEY_NAME = "demo (make run)"


def prepare() -> str:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.keys import create_key, revoke_key
    from gpuniq_site.static_build import collect_if_changed
    from accounts.models import APIKey, User
    from billing import ledger
    from billing.models import LedgerEntry

    call_command("migrate", verbosity=0, interactive=False)
    collect_if_changed()  # hashed, compressed copies under var/ (only when a source changed)
    call_command("sync_catalog", path=str(settings.GPUNIQ_CATALOG_PATH))
    user = User.objects.filter(email=DEMO_EMAIL).first()
    if user is None:
        user = User.objects.create_user(DEMO_EMAIL, password="demo-password-123")
        account = ledger.account_for_user(user.pk)
        ledger.post(
            account_id=account.pk,
            amount=DEMO_CREDIT,
            kind=LedgerEntry.ADJUSTMENT,
            idempotency_key=f"demo-credit:{user.pk}",
            reason="demo credit (make run)",
        )
    for old in APIKey.objects.filter(user=user, name=DEMO_KEY_NAME, revoked_at__isnull=True):
        revoke_key(key=old)
    _, raw = create_key(user=user, name=DEMO_KEY_NAME)
    return raw


def main() -> int:
    raw_key = prepare()
    from django.conf import settings

    port = str(settings.PORT)
    url = f"http://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gpuniq_site.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--log-level",
                "warning",
            ]
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "gpuniq_site",
                "worker",
                "-B",
                "-P",
                "threads",
                "-c",
                "4",
                "--loglevel",
                "warning",
                "-s",
                str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
            ]
        ),
    ]
    print(
        f"\nGPUniq is serving at {url}\n  demo user: {DEMO_EMAIL} / demo-password-123\n"
        f"  demo API key: {raw_key}\n"
        f"  try: curl {url}/v1/openai/models -H 'Authorization: Bearer {raw_key}'\n"
        "  Ctrl-C stops the server and the worker.\n",
        flush=True,
    )
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.3)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
