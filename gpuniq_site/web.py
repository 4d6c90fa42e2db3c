"""`gpuniq-web`: the production ASGI server (uvicorn), configured from the environment.

HOST (0.0.0.0), PORT (8000), WEB_CONCURRENCY processes (1), FORWARDED_ALLOW_IPS (127.0.0.1: the
proxies whose X-Forwarded-* headers are trusted), LOG_LEVEL. On SIGTERM the server stops accepting
connections and lets open requests — streams included — run for GPUNIQ_DRAIN_SECONDS (30); what
still runs then is cut, and a cut stream is billed for what it produced before the process closes
its database pools (gpuniq_site.lifespan waits for that settlement).
"""

import os
import sys


def options() -> dict:
    """uvicorn's keyword arguments for this environment."""
    from .env import envfloat, envint, envstr

    return {
        "host": envstr("HOST", "0.0.0.0"),
        "port": envint("PORT", 8000),
        "workers": envint("WEB_CONCURRENCY", 1),
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": True,
        "forwarded_allow_ips": envstr("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "timeout_graceful_shutdown": envfloat("GPUNIQ_DRAIN_SECONDS", 30.0),
        "log_level": envstr("LOG_LEVEL", "INFO").lower(),
        "backlog": envint("WEB_BACKLOG", 2048),
    }


def main() -> None:
    import uvicorn

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")
    uvicorn.run("gpuniq_site.asgi:application", **options())


if __name__ == "__main__":
    main()
