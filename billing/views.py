"""Native billing endpoints."""

from typing import Any

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from accounts.guard import KeyRequest, key_required
from gpuniq_site.db import run_db
from gpuniq_site.responses import native_ok

from .models import Account


def _balance(account_id: int) -> dict[str, Any]:
    account = Account.objects.get(pk=account_id)
    # balance_usd is what can be spent now; held_usd is reserved by requests and jobs in flight.
    return {
        "balance_usd": float(account.available),
        "held_usd": float(account.held),
        "total_usd": float(account.balance),
        "currency": "USD",
    }


@require_GET
@key_required
async def balance(request: KeyRequest) -> HttpResponse:
    data = await run_db(_balance, request.principal.account_id)
    return native_ok(request, data)
