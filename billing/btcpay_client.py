"""A small client for BTCPay Server's Greenfield API (https://docs.btcpayserver.org/API/Greenfield/v1/),
on httpx: the three calls the crypto rail needs, and the webhook signature check.

No maintained Python client for Greenfield exists; this one speaks the documented JSON directly.
Every failure (unreachable, 5xx, unexpected body) is a PaymentProviderError whose message is safe
to show; a 404 is NotFound (an invoice that does not exist in our store).
"""

import hashlib
import hmac
from typing import Any

import httpx
from django.conf import settings

from .stripe_topups import PaymentProviderError


class NotFound(Exception):
    """The store has no such invoice."""


def configured() -> bool:
    return bool(
        settings.BTCPAY_URL
        and settings.BTCPAY_API_KEY
        and settings.BTCPAY_STORE_ID
        and settings.BTCPAY_WEBHOOK_SECRET
    )


def _request(method: str, path: str, **kwargs: Any) -> Any:
    url = f"{settings.BTCPAY_URL.rstrip('/')}/api/v1/stores/{settings.BTCPAY_STORE_ID}{path}"
    headers = {"Authorization": f"token {settings.BTCPAY_API_KEY}", "Accept": "application/json"}
    try:
        response = httpx.request(
            method, url, headers=headers, timeout=settings.PAYMENT_TIMEOUT_SECONDS, **kwargs
        )
    except httpx.HTTPError as exc:
        raise PaymentProviderError(
            "The payment provider is unavailable right now; please try again."
        ) from exc
    if response.status_code == 404:
        raise NotFound(path)
    if response.status_code != 200:
        raise PaymentProviderError(f"The payment provider answered {response.status_code}; please try again.")
    try:
        return response.json()
    except ValueError as exc:
        raise PaymentProviderError("The payment provider sent an unreadable answer.") from exc


def _request_object(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    answer = _request(method, path, **kwargs)
    if not isinstance(answer, dict):
        raise PaymentProviderError("The payment provider sent an unreadable answer.")
    return answer


def create_invoice(*, amount_usd: str, metadata: dict[str, Any], redirect_url: str) -> dict[str, Any]:
    """POST /api/v1/stores/{storeId}/invoices (Invoices_CreateInvoice): an invoice priced in USD."""
    return _request_object(
        "POST",
        "/invoices",
        json={
            "amount": amount_usd,
            "currency": "USD",
            "metadata": metadata,
            "checkout": {"redirectURL": redirect_url, "redirectAutomatically": True},
        },
    )


def get_invoice(invoice_id: str) -> dict[str, Any]:
    """GET /api/v1/stores/{storeId}/invoices/{invoiceId} (Invoices_GetInvoice)."""
    return _request_object("GET", f"/invoices/{invoice_id}")


def get_payment_methods(invoice_id: str) -> list[dict[str, Any]]:
    """GET .../invoices/{invoiceId}/payment-methods (Invoices_GetInvoicePaymentMethods): per method
    its `rate` (invoice currency per unit) and `payments` (each with `id`, `value`, `status`)."""
    methods = _request("GET", f"/invoices/{invoice_id}/payment-methods")
    if not isinstance(methods, list):
        raise PaymentProviderError("The payment provider sent an unreadable answer.")
    return methods


def refund_invoice(invoice_id: str, *, amount_usd: str) -> dict[str, Any]:
    """POST .../invoices/{invoiceId}/refund (Invoices_Refund): a pull payment of `amount_usd` the buyer
    claims to an address of their choice; answers PullPaymentData (`id`, `amount`, `currency`, `viewLink`)."""
    return _request_object(
        "POST",
        f"/invoices/{invoice_id}/refund",
        json={
            "name": f"Refund of invoice {invoice_id}",
            "paymentMethod": "BTC-CHAIN",
            "refundVariant": "Custom",
            "customAmount": amount_usd,
            "customCurrency": "USD",
        },
    )


def signature_ok(body: bytes, header: str | None) -> bool:
    """BTCPay-Sig: "sha256=" + hex HMAC-SHA256 of the raw body keyed with the webhook's secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(settings.BTCPAY_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :].strip().lower())
