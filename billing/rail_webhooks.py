"""POST /webhooks/yookassa and /webhooks/btcpay: authenticate, record, then re-read from the vendor.

Answers: 403 for a YooKassa notification from outside its published networks; 400 for a bad
BTCPay-Sig or a body that is not a notification; 503 when the rail is not configured; 500 when
handling failed (the vendor retries later); 200 otherwise, duplicates and ignored events included.
"""

import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gpuniq_site.json_body import storable

from . import btcpay_client, btcpay_rail, rail_events, yookassa_rail
from .models import TopUp

log = logging.getLogger("gpuniq.payments")
YOOKASSA_EVENTS = {"payment.succeeded", "payment.canceled", "refund.succeeded"}
BTCPAY_EVENTS = {"InvoiceSettled", "InvoiceExpired", "InvoiceInvalid", "InvoicePaymentSettled"}


CODES = {
    400: "invalid_parameter",
    403: "webhook_sender_not_allowed",
    500: "internal_error",
    503: "service_unavailable",
}  # the catalog's (gpuniq_site.errors), for our logs and tools


def _refuse(status: int, message: str, code: str | None = None) -> JsonResponse:
    return JsonResponse({"received": False, "error": message, "code": code or CODES[status]}, status=status)


def _json(body: bytes) -> dict[str, Any] | None:
    """The body as an object PostgreSQL can record (gpuniq_site.json_body.storable), else None."""
    try:
        data = storable(json.loads(body))
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _peer(request: HttpRequest) -> str:
    """The sender's address: the socket peer, or the entry YOOKASSA_FORWARDED_HOPS proxies back."""
    hops = settings.YOOKASSA_FORWARDED_HOPS
    forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
    if hops > 0 and len(forwarded) >= hops:
        return forwarded[-hops]
    return str(request.META.get("REMOTE_ADDR", ""))


def yookassa_sender_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in settings.YOOKASSA_NOTIFICATION_IPS:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            log.error("YOOKASSA_NOTIFICATION_IPS has an invalid entry %r", network)
    return False


def _outcome(receive: Callable[[], str]) -> JsonResponse:
    try:
        return JsonResponse({"received": True, "status": receive()})
    except Exception:
        log.exception("payment notification failed; the vendor will retry")
        return _refuse(500, "handling failed")


@csrf_exempt  # authenticated by the sender's network and by re-reading the object from YooKassa's API
@require_POST
def yookassa_webhook(request: HttpRequest) -> JsonResponse:
    if not yookassa_rail.configured():
        return _refuse(503, "YooKassa is not configured")
    if not yookassa_sender_trusted(_peer(request)):
        log.warning("YooKassa notification refused from %s", _peer(request))
        return _refuse(403, "sender not in YooKassa's networks")
    note = _json(request.body)
    obj = (note or {}).get("object")
    if not note or note.get("type") != "notification" or not isinstance(obj, dict) or not obj.get("id"):
        return _refuse(400, "invalid payload", "invalid_json")
    event, object_id = str(note.get("event", "")), str(obj["id"])

    def handle() -> str:
        if event not in YOOKASSA_EVENTS:
            return f"unhandled event {event}"
        payment_id = str(obj.get("payment_id") or "") if event.startswith("refund.") else object_id
        if not TopUp.objects.filter(rail=TopUp.YOOKASSA, session_id=payment_id).exists():
            return "not a GPUniq top-up payment"  # nothing to re-read: no money of ours moves
        try:
            if event.startswith("refund."):
                return yookassa_rail.apply_refund(yookassa_rail.fetch_refund(object_id))
            payment = yookassa_rail.fetch_payment(object_id)
        except yookassa_rail.NotFound:
            return "YooKassa has no such object"
        outcome = yookassa_rail.apply_payment(payment)
        wanted = event.split(".", 1)[1]
        return outcome or (
            "" if payment.get("status") == wanted else f"YooKassa says {payment.get('status')}"
        )

    return _outcome(
        lambda: rail_events.receive(
            rail=TopUp.YOOKASSA,
            event_id=f"{event}:{object_id}",
            type_=event,
            object_id=object_id,
            payload=note,
            handle=handle,
        )
    )


@csrf_exempt  # authenticated by the BTCPay-Sig HMAC instead of a session
@require_POST
def btcpay_webhook(request: HttpRequest) -> JsonResponse:
    if not btcpay_client.configured():
        return _refuse(503, "BTCPay is not configured")
    if not btcpay_client.signature_ok(request.body, request.headers.get("BTCPay-Sig")):
        log.warning("BTCPay webhook refused: bad signature")
        return _refuse(400, "invalid signature")
    event = _json(request.body)
    if not event or not event.get("deliveryId") or not event.get("type"):
        return _refuse(400, "invalid payload", "invalid_json")
    kind, invoice_id = str(event["type"]), str(event.get("invoiceId") or "")

    def handle() -> str:
        if kind not in BTCPAY_EVENTS or not invoice_id:
            return f"unhandled event {kind}"
        if event.get("storeId") and event["storeId"] != settings.BTCPAY_STORE_ID:
            return f"another store's event ({event['storeId']})"
        return btcpay_rail.reconcile(invoice_id)

    delivery = str(event.get("originalDeliveryId") or event["deliveryId"])  # a redelivery is the same event
    return _outcome(
        lambda: rail_events.receive(
            rail=TopUp.BTCPAY,
            event_id=delivery,
            type_=kind,
            object_id=invoice_id,
            payload=event,
            handle=handle,
        )
    )
