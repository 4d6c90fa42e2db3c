"""Fake YooKassa API v3 and payment page (loopback only, never api.yookassa.ru).

Wire format follows YooKassa's API reference (https://yookassa.ru/developers/api):
* Authentication: HTTP Basic, shop id as the user and the secret key as the password; 401 with
  ``{"type": "error", "id", "code": "invalid_credentials", "description"}`` otherwise.
* ``POST /v3/payments`` (Create a payment): JSON body with ``amount {value, currency}``,
  ``capture``, ``confirmation {type: "redirect", return_url}``, ``description``, ``metadata``; the
  ``Idempotence-Key`` header is required and the same key answers the same payment. The Payment
  object: ``id`` (UUID-like), ``status`` pending | waiting_for_capture | succeeded | canceled,
  ``paid``, ``amount``, ``income_amount``, ``refunded_amount``, ``confirmation {type,
  confirmation_url, return_url}``, ``created_at``, ``captured_at``, ``description``, ``metadata``,
  ``recipient``, ``refundable``, ``test``, ``cancellation_details {party, reason}``.
* ``POST /v3/refunds`` (Create a refund: ``payment_id``, ``amount``; Idempotence-Key required) answers
  a succeeded Refund and sends ``refund.succeeded``.
* ``GET /v3/payments/{id}``, ``GET /v3/refunds/{id}`` (the Refund object: ``id``, ``payment_id``,
  ``status`` pending | succeeded | canceled, ``amount``, ``created_at``); 404 ``not_found`` errors.
* Notifications (https://yookassa.ru/developers/using-api/webhooks): POSTed as JSON
  ``{"type": "notification", "event": "payment.succeeded" | "payment.canceled" | "refund.succeeded",
  "object": {...the object at the moment of the event}}``; no signature (YooKassa is verified by its
  source networks and by re-reading the object).

``GET /checkout/{id}`` stands in for the confirmation page: "Pay" marks the payment succeeded,
"Cancel" marks it canceled; each sends its notification to ``webhook_url`` (or keeps it in
``outbox``), then redirects to the ``return_url``.
"""

from __future__ import annotations

import base64
import html
import threading
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import httpx

from .common import Conn, FakeServer, Request


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payment_id() -> str:
    raw = uuid.uuid4().hex
    return f"{raw[:8]}-000f-5000-9000-{raw[8:20]}"


def _error(code: str, description: str) -> dict:
    return {"type": "error", "id": str(uuid.uuid4()), "code": code, "description": description}


class FakeYooKassa(FakeServer):
    """Args: ``shop_id``, ``secret_key`` (Basic auth), ``webhook_url`` (where notifications go)."""

    def __init__(
        self,
        *,
        shop_id: str = "123456",
        secret_key: str = "test_secret",
        webhook_url: str | None = None,
        **kw,
    ):
        super().__init__(api_key=secret_key, **kw)
        self.shop_id, self.secret_key, self.webhook_url = shop_id, secret_key, webhook_url
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}
        self.outbox: list[dict] = []
        self.delivered: list[tuple[dict, int]] = []
        self._state = threading.Lock()
        self.route("POST", r"/v3/payments", self._create_payment)
        self.route("GET", r"/v3/payments/(?P<id>[^/]+)", self._get("payments"))
        self.route("GET", r"/v3/refunds/(?P<id>[^/]+)", self._get("refunds"))
        self.route("POST", r"/v3/refunds", self._create_refund)
        self.route("GET", r"/checkout/(?P<id>[^/]+)", self._page)
        self.route("POST", r"/checkout/(?P<id>[^/]+)", self._submit)

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v3"

    def _authorized(self, req: Request) -> bool:
        token = base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        return req.headers.get("authorization", "") == f"Basic {token}"

    async def _create_payment(self, req: Request, conn: Conn) -> None:
        if not self._authorized(req):
            await conn.send_json(401, _error("invalid_credentials", "Basic authentication failed"))
            return
        key = req.headers.get("idempotence-key")
        body = req.json if isinstance(req.json, dict) else {}
        if not key:
            await conn.send_json(400, _error("invalid_request", "Idempotence-Key header is required"))
            return
        if (
            not (body.get("amount") or {}).get("value")
            or (body.get("confirmation") or {}).get("type") != "redirect"
        ):
            await conn.send_json(
                400, _error("invalid_request", "amount and a redirect confirmation are required")
            )
            return
        with self._state:
            if key in self.by_key:
                payment = self.payments[self.by_key[key]]
            else:
                payment = self._new_payment(body)
                self.by_key[key] = payment["id"]
        await conn.send_json(200, payment)

    def _new_payment(self, body: dict) -> dict:
        pid = _payment_id()
        payment = {
            "id": pid,
            "status": "pending",
            "paid": False,
            "amount": dict(body["amount"]),
            "confirmation": {
                "type": "redirect",
                "confirmation_url": f"{self.base_url}/checkout/{pid}",
                "return_url": body["confirmation"].get("return_url"),
            },
            "created_at": _now(),
            "description": body.get("description", ""),
            "metadata": body.get("metadata", {}),
            "recipient": {"account_id": self.shop_id, "gateway_id": "1000001"},
            "refundable": False,
            "test": True,
        }
        self.payments[pid] = payment
        return payment

    async def _create_refund(self, req: Request, conn: Conn) -> None:
        if not self._authorized(req):
            await conn.send_json(401, _error("invalid_credentials", "Basic authentication failed"))
            return
        body, key = req.json if isinstance(req.json, dict) else {}, req.headers.get("idempotence-key")
        if not key or body.get("payment_id") not in self.payments:
            await conn.send_json(
                400, _error("invalid_request", "Idempotence-Key and a known payment_id are required")
            )
            return
        if key in self.by_key:
            await conn.send_json(200, self.refunds[self.by_key[key]])
            return
        if self.payments[body["payment_id"]]["status"] != "succeeded":
            await conn.send_json(400, _error("invalid_request", "Payment is not succeeded"))
            return
        note = self.refund(body["payment_id"], body["amount"]["value"], deliver=False)
        self.by_key[key] = note["object"]["id"]
        async with httpx.AsyncClient(timeout=30) as client:
            await self._adeliver(client, note)
        await conn.send_json(200, note["object"])

    def _get(self, kind: str):
        async def handler(req: Request, conn: Conn) -> None:
            if not self._authorized(req):
                await conn.send_json(401, _error("invalid_credentials", "Basic authentication failed"))
                return
            obj = getattr(self, kind).get(req.path.rsplit("/", 1)[-1])
            if obj is None:
                await conn.send_json(404, _error("not_found", f"Incorrect {kind[:-1]} id"))
            else:
                await conn.send_json(200, obj)

        return handler

    # ------------------------------------------------------------------ the confirmation page
    async def _page(self, req: Request, conn: Conn) -> None:
        payment = self.payments.get(req.path.rsplit("/", 1)[-1])
        if payment is None:
            await conn.send_bytes(404, b"<h1>Payment not found</h1>", "text/html")
            return
        amount = f"{Decimal(payment['amount']['value']):,.2f} {payment['amount']['currency']}"
        page = _PAGE.format(
            amount=html.escape(amount),
            action=f"/checkout/{payment['id']}",
            description=html.escape(payment.get("description", "")),
        )
        await conn.send_bytes(200, page.encode(), "text/html; charset=utf-8")

    async def _submit(self, req: Request, conn: Conn) -> None:
        pid = req.path.rsplit("/", 1)[-1]
        if pid not in self.payments:
            await conn.send_bytes(404, b"not found", "text/plain")
            return
        action = dict(x.split("=", 1) for x in req.body.decode().split("&") if "=" in x).get("action", "pay")
        note = self.succeed(pid, deliver=False) if action == "pay" else self.cancel(pid, deliver=False)
        async with httpx.AsyncClient(timeout=30) as client:
            await self._adeliver(client, note)
        await conn.send_bytes(
            303, b"", "text/plain", [("location", self.payments[pid]["confirmation"]["return_url"])]
        )

    # ------------------------------------------------------------------ state changes (tests call these)
    def succeed(self, pid: str, *, deliver: bool = True) -> dict:
        with self._state:
            payment = self.payments[pid]
            value = Decimal(payment["amount"]["value"])
            payment.update(
                status="succeeded",
                paid=True,
                captured_at=_now(),
                refundable=True,
                income_amount={
                    "value": f"{value * Decimal('0.965'):.2f}",
                    "currency": payment["amount"]["currency"],
                },
                refunded_amount={"value": "0.00", "currency": payment["amount"]["currency"]},
                payment_method={
                    "type": "bank_card",
                    "id": pid,
                    "saved": False,
                    "card": {"last4": "4444", "card_type": "Mastercard"},
                },
            )
            note = self.notification("payment.succeeded", payment)
        return self._send(note, deliver)

    def cancel(self, pid: str, *, reason: str = "expired_on_confirmation", deliver: bool = True) -> dict:
        with self._state:
            payment = self.payments[pid]
            payment.update(
                status="canceled", paid=False, cancellation_details={"party": "yoo_money", "reason": reason}
            )
            note = self.notification("payment.canceled", payment)
        return self._send(note, deliver)

    def refund(self, pid: str, value: str | None = None, *, deliver: bool = True) -> dict:
        """The shop refunds (part of) a succeeded payment; returns the refund.succeeded notification."""
        with self._state:
            payment = self.payments[pid]
            currency = payment["amount"]["currency"]
            done = Decimal(payment["refunded_amount"]["value"])
            amount = Decimal(value) if value is not None else Decimal(payment["amount"]["value"]) - done
            refund = {
                "id": _payment_id().replace("-000f-", "-0015-"),
                "payment_id": pid,
                "status": "succeeded",
                "created_at": _now(),
                "amount": {"value": f"{amount:.2f}", "currency": currency},
            }
            self.refunds[refund["id"]] = refund
            payment["refunded_amount"] = {"value": f"{done + amount:.2f}", "currency": currency}
            if done + amount >= Decimal(payment["amount"]["value"]):
                payment["refundable"] = False
            note = self.notification("refund.succeeded", refund)
        return self._send(note, deliver)

    def notification(self, event: str, obj: dict) -> dict:
        return {"type": "notification", "event": event, "object": dict(obj)}

    def _send(self, note: dict, deliver: bool) -> dict:
        if deliver:
            self.deliver(note)
        return note

    def deliver(self, note: dict) -> httpx.Response | None:
        if not self.webhook_url:
            self.outbox.append(note)
            return None
        response = httpx.post(self.webhook_url, json=note, timeout=30)
        self.delivered.append((note, response.status_code))
        return response

    async def _adeliver(self, client: httpx.AsyncClient, note: dict) -> None:
        if not self.webhook_url:
            self.outbox.append(note)
            return
        response = await client.post(self.webhook_url, json=note)
        self.delivered.append((note, response.status_code))


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake YooKassa</title>
<style>body{{font:15px system-ui,sans-serif;display:grid;place-items:center;min-height:100vh;margin:0;
background:#f4f4f4}}
.box{{background:#fff;padding:32px;border-radius:12px;width:360px}}
.amt{{font-size:30px;font-weight:700;margin:8px 0 20px}}
button{{width:100%;padding:12px;margin-top:8px;border:0;border-radius:8px;font-size:16px;cursor:pointer}}
#pay{{background:#0070f0;color:#fff}} #cancel{{background:#eee}}</style></head>
<body><form class="box" method="post" action="{action}"><small>TEST · fake YooKassa</small>
<div>{description}</div><div class="amt">{amount}</div>
<button id="pay" name="action" value="pay">Pay {amount}</button>
<button id="cancel" name="action" value="cancel">Cancel payment</button></form></body></html>"""
