"""POST /webhooks/stripe: verify Stripe's signature, then hand the event to stripe_events.

Answers: 400 for a bad or stale signature or a body that is not an event (Stripe does not
retry those usefully); 500 when handling failed, so Stripe retries later; 200 otherwise,
duplicates included.
"""

import json
import logging

import stripe
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import stripe_events

log = logging.getLogger("gpuniq.stripe")


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"received": False, "error": message}, status=status)


@csrf_exempt  # authenticated by the Stripe-Signature HMAC instead of a session
@require_POST
def stripe_webhook(request):
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return _refuse(503, "payments are not configured")
    payload = request.body
    try:
        stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature"), secret,
                                       tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        log.warning("stripe webhook refused: %s", exc.user_message or exc)
        return _refuse(400, "invalid signature")
    except ValueError:
        return _refuse(400, "invalid payload")
    if not isinstance(event, dict) or not event.get("id"):
        return _refuse(400, "invalid payload")
    try:
        outcome = stripe_events.receive(event)
    except Exception:
        log.exception("stripe event %s (%s) failed; Stripe will retry", event.get("id"), event.get("type"))
        return _refuse(500, "handling failed")
    return JsonResponse({"received": True, "status": outcome})
