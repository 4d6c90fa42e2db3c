"""POST /webhooks/stripe: verify Stripe's signature, then hand the event to stripe_events.

Answers: 400 for a bad or stale signature or a body that is not an event (Stripe does not
retry those usefully); 500 when handling failed, so Stripe retries later; 200 otherwise,
duplicates included.
"""

import json
import logging
import time

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gpuniq_site.json_body import storable

from . import stripe_events

log = logging.getLogger("gpuniq.stripe")


def _refuse(status: int, message: str, code: str) -> JsonResponse:
    """Stripe reads only the status; `code` is the catalog's (gpuniq_site.errors) for our logs and tools."""
    return JsonResponse({"received": False, "error": message, "code": code}, status=status)


def _from_the_future(header: str) -> bool:
    """stripe-python only refuses old timestamps; a signed time too far ahead is refused here too
    (a captured future-dated delivery would otherwise stay replayable until then)."""
    stamps = [part[2:] for part in header.split(",") if part.startswith("t=")]
    try:
        return bool(stamps) and int(stamps[0]) > time.time() + settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    except ValueError:
        return False  # construct_event refuses a malformed header


def _is_event(event: object) -> bool:
    """Shaped as every Stripe event is: id and type strings that fit their columns (StripeEvent),
    data.object an object."""
    if not isinstance(event, dict):
        return False
    event_id, kind, data = event.get("id"), event.get("type", ""), event.get("data")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        return False
    if not isinstance(kind, str) or len(kind) > 100:
        return False
    return isinstance(data, dict) and isinstance(data.get("object"), dict)


@csrf_exempt  # authenticated by the Stripe-Signature HMAC instead of a session
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return _refuse(503, "payments are not configured", "service_unavailable")
    payload = request.body
    if _from_the_future(request.headers.get("Stripe-Signature") or ""):
        log.warning("stripe webhook refused: timestamp beyond the tolerance in the future")
        return _refuse(400, "invalid signature", "invalid_parameter")
    try:
        # verify first, then parse ourselves: the SDK's construct_event assumes an object and
        # fails with an AttributeError on a signed array
        stripe.WebhookSignature.verify_header(
            payload,
            request.headers.get("Stripe-Signature"),
            secret,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
        # recorded as sent but storable: NUL, lone surrogates and Infinity would fail the insert on
        # every delivery (gpuniq_site.json_body.storable)
        event = storable(json.loads(payload))
    except stripe.SignatureVerificationError as exc:
        log.warning("stripe webhook refused: %s", exc.user_message or exc)
        return _refuse(400, "invalid signature", "invalid_parameter")
    except (ValueError, RecursionError):
        return _refuse(400, "invalid payload", "invalid_json")
    if not _is_event(event):
        return _refuse(400, "invalid payload", "invalid_json")
    try:
        outcome = stripe_events.receive(event)
    except Exception:
        log.exception("stripe event %s (%s) failed; Stripe will retry", event.get("id"), event.get("type"))
        return _refuse(500, "handling failed", "internal_error")
    return JsonResponse({"received": True, "status": outcome})
