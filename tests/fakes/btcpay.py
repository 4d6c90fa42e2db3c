"""Fake BTCPay Server Greenfield API and checkout page (loopback only, never a real BTCPay).

Wire format follows the Greenfield API reference (https://docs.btcpayserver.org/API/Greenfield/v1/):
* Authentication: ``Authorization: token <api key>``; 401 ``{"code": "unauthenticated", "message"}``.
* ``POST /api/v1/stores/{storeId}/invoices`` (Invoices_CreateInvoice): JSON ``amount`` (string),
  ``currency``, ``metadata``, ``checkout {redirectURL, redirectAutomatically}``; answers InvoiceData:
  ``id``, ``storeId``, ``amount``, ``currency``, ``type`` "Standard", ``checkoutLink``, ``createdTime``,
  ``expirationTime``, ``monitoringExpiration`` (unix seconds), ``status`` New | Processing | Expired |
  Invalid | Settled, ``additionalStatus`` None | PaidLate | PaidPartial | Marked | Invalid | PaidOver,
  ``metadata``, ``checkout``, ``archived``.
* ``GET .../invoices/{invoiceId}`` (Invoices_GetInvoice) and ``GET .../invoices/{invoiceId}/payment-methods``
  (Invoices_GetInvoicePaymentMethods): a list, per method ``paymentMethodId`` "BTC-CHAIN", ``currency``,
  ``destination``, ``rate`` (USD per BTC, a string), ``amount``, ``paymentMethodPaid``, ``totalPaid``,
  ``due``, ``networkFee``, ``payments`` [{``id``, ``receivedDate``, ``value``, ``fee``, ``status``
  Invalid | Processing | Settled, ``destination``}]. 404 ``{"code": "invoice-not-found", "message"}``.
* Webhooks (Webhook_InvoiceSettled etc.): JSON ``deliveryId``, ``webhookId``, ``originalDeliveryId``,
  ``isRedelivery``, ``type``, ``timestamp``, ``storeId``, ``invoiceId``, ``metadata`` (plus
  ``manuallyMarked`` / ``overPaid`` / ``partiallyPaid`` / ``afterExpiration`` / ``payment`` by type),
  signed ``BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body keyed with the webhook secret>``.

* ``POST .../invoices/{invoiceId}/refund`` (Invoices_Refund: ``refundVariant`` "Custom" with
  ``customAmount`` and ``customCurrency``, ``paymentMethod``) answers PullPaymentData (``id``, ``name``,
  ``currency``, ``amount``, ``archived``, ``viewLink``); only a Settled or Expired invoice can be refunded.

``GET /i/{invoiceId}`` stands in for the checkout page: "Pay" pays the due amount (settled at once),
"Pay half" pays half, "Cancel" lets the invoice expire; then it redirects to ``redirectURL``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import threading
import time
import uuid
from decimal import ROUND_DOWN, Decimal
from urllib.parse import parse_qsl

import httpx

from .common import Conn, FakeServer, Request

RATE = Decimal("50000.00")  # USD per BTC
SAT = Decimal("0.00000001")
NOT_FOUND = {"code": "invoice-not-found", "message": "The invoice was not found"}


def sign(body: str, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def _invoice_id() -> str:
    return uuid.uuid4().hex[:22].upper()


class FakeBTCPay(FakeServer):
    """Args: ``api_key``, ``store_id``, ``webhook_secret``, ``webhook_url``."""

    def __init__(
        self,
        *,
        api_key: str = "btcpay-key",
        store_id: str = "StoreFake1",
        webhook_secret: str = "btcpay-wh",
        webhook_url: str | None = None,
        **kw,
    ):
        super().__init__(api_key=api_key, **kw)
        self.store_id, self.webhook_secret, self.webhook_url = store_id, webhook_secret, webhook_url
        self.invoices: dict[str, dict] = {}
        self.payments: dict[str, list[dict]] = {}
        self.pull_payments: list[dict] = []
        self.outbox: list[dict] = []
        self.delivered: list[tuple[dict, int]] = []
        self._state = threading.Lock()
        store = r"/api/v1/stores/(?P<store>[^/]+)/invoices"
        self.route("POST", store, self._create)
        self.route("GET", store + r"/(?P<id>[^/]+)", self._get_invoice)
        self.route("GET", store + r"/(?P<id>[^/]+)/payment-methods", self._get_methods)
        self.route("POST", store + r"/(?P<id>[^/]+)/refund", self._refund)
        self.route("GET", r"/i/(?P<id>[^/]+)", self._page)
        self.route("POST", r"/i/(?P<id>[^/]+)", self._submit)

    def _refused(self, req: Request) -> tuple[int, dict] | None:
        if req.headers.get("authorization") != f"token {self.api_key}":
            return 401, {
                "code": "unauthenticated",
                "message": "Authentication is required for accessing this endpoint",
            }
        if req.path.split("/")[4] != self.store_id:
            return 403, {"code": "forbidden", "message": "You do not have access to this store"}
        return None

    async def _create(self, req: Request, conn: Conn) -> None:
        refused = self._refused(req)
        if refused:
            await conn.send_json(*refused)
            return
        body = req.json if isinstance(req.json, dict) else {}
        now = int(time.time())
        iid = _invoice_id()
        invoice = {
            "id": iid,
            "storeId": self.store_id,
            "amount": str(body.get("amount", "0")),
            "currency": body.get("currency", "USD"),
            "type": "Standard",
            "checkoutLink": f"{self.base_url}/i/{iid}",
            "createdTime": now,
            "expirationTime": now + 900,
            "monitoringExpiration": now + 87300,
            "status": "New",
            "additionalStatus": "None",
            "metadata": body.get("metadata", {}),
            "checkout": body.get("checkout", {}),
            "archived": False,
            "availableStatusesForManualMarking": ["Settled", "Invalid"],
        }
        with self._state:
            self.invoices[iid], self.payments[iid] = invoice, []
        await conn.send_json(200, invoice)

    async def _get_invoice(self, req: Request, conn: Conn) -> None:
        refused = self._refused(req)
        iid = req.path.rsplit("/", 1)[-1]
        if refused or iid not in self.invoices:
            await conn.send_json(*(refused or (404, NOT_FOUND)))
            return
        await conn.send_json(200, self.invoices[iid])

    async def _get_methods(self, req: Request, conn: Conn) -> None:
        refused = self._refused(req)
        iid = req.path.split("/")[-2]
        if refused or iid not in self.invoices:
            await conn.send_json(*(refused or (404, NOT_FOUND)))
            return
        await conn.send_json(200, [self.method(iid)])

    async def _refund(self, req: Request, conn: Conn) -> None:
        refused = self._refused(req)
        iid = req.path.split("/")[-2]
        if refused or iid not in self.invoices:
            await conn.send_json(*(refused or (404, NOT_FOUND)))
            return
        body = req.json if isinstance(req.json, dict) else {}
        if (
            self.invoices[iid]["status"] not in ("Settled", "Expired")
            or body.get("refundVariant") != "Custom"
        ):
            await conn.send_json(422, [{"path": "refundVariant", "message": "Cannot refund this invoice"}])
            return
        pull = {
            "id": uuid.uuid4().hex[:20],
            "name": body.get("name", ""),
            "currency": body["customCurrency"],
            "amount": body["customAmount"],
            "archived": False,
            "viewLink": f"{self.base_url}/pull-payments/x",
        }
        self.pull_payments.append({**pull, "invoiceId": iid})
        await conn.send_json(200, pull)

    def method(self, iid: str) -> dict:
        with self._state:
            invoice, payments = self.invoices[iid], [dict(p) for p in self.payments[iid]]
        due_btc = (Decimal(invoice["amount"]) / RATE).quantize(SAT)
        paid = sum((Decimal(p["value"]) for p in payments if p["status"] != "Invalid"), Decimal(0))
        return {
            "paymentMethodId": "BTC-CHAIN",
            "currency": "BTC",
            "destination": "bcrt1qfakeaddress",
            "paymentLink": f"bitcoin:bcrt1qfakeaddress?amount={due_btc}",
            "rate": f"{RATE}",
            "amount": f"{due_btc}",
            "paymentMethodPaid": f"{paid}",
            "totalPaid": f"{paid}",
            "due": f"{due_btc - paid}",
            "networkFee": "0.0",
            "activated": True,
            "payments": payments,
        }

    # ------------------------------------------------------------------ checkout page
    async def _page(self, req: Request, conn: Conn) -> None:
        invoice = self.invoices.get(req.path.rsplit("/", 1)[-1])
        if invoice is None:
            await conn.send_bytes(404, b"<h1>Invoice not found</h1>", "text/html")
            return
        page = _PAGE.format(
            amount=html.escape(f"${Decimal(invoice['amount']):,.2f}"),
            action=f"/i/{invoice['id']}",
            btc=(Decimal(invoice["amount"]) / RATE).quantize(SAT),
        )
        await conn.send_bytes(200, page.encode(), "text/html; charset=utf-8")

    async def _submit(self, req: Request, conn: Conn) -> None:
        iid = req.path.rsplit("/", 1)[-1]
        if iid not in self.invoices:
            await conn.send_bytes(404, b"not found", "text/plain")
            return
        action = dict(parse_qsl(req.body.decode())).get("action", "pay")
        if action == "cancel":
            events = self.expire(iid, deliver=False)
        else:
            usd = Decimal(self.invoices[iid]["amount"]) / (2 if action == "half" else 1)
            events = self.pay(iid, usd, deliver=False)
        async with httpx.AsyncClient(timeout=30) as client:
            for event in events:
                await self._adeliver(client, event)
        target = self.invoices[iid]["checkout"].get("redirectURL") or "/"
        await conn.send_bytes(303, b"", "text/plain", [("location", target)])

    # ------------------------------------------------------------------ state changes (tests call these)
    def pay(
        self, iid: str, usd: Decimal | str, *, status: str = "Settled", deliver: bool = True
    ) -> list[dict]:
        """A payment worth `usd` arrives (settled at once by default); returns its webhooks."""
        btc = (Decimal(usd) / RATE).quantize(SAT, rounding=ROUND_DOWN)
        payment = {
            "id": f"{uuid.uuid4().hex}-0",
            "receivedDate": int(time.time()),
            "value": f"{btc}",
            "fee": "0.0",
            "status": status,
            "destination": "bcrt1qfakeaddress",
        }
        with self._state:
            self.payments[iid].append(payment)
        events = (
            [
                self.event(
                    "InvoicePaymentSettled",
                    iid,
                    afterExpiration=False,
                    paymentMethodId="BTC-CHAIN",
                    payment=payment,
                )
            ]
            if status == "Settled"
            else []
        )
        events += self._settle_if_paid(iid)
        return self._send(events, deliver)

    def _settle_if_paid(self, iid: str) -> list[dict]:
        method = self.method(iid)
        settled = sum(
            (Decimal(p["value"]) for p in method["payments"] if p["status"] == "Settled"), Decimal(0)
        )
        if settled < Decimal(method["amount"]) or self.invoices[iid]["status"] == "Settled":
            return []
        over = settled > Decimal(method["amount"])
        self.invoices[iid].update(status="Settled", additionalStatus="PaidOver" if over else "None")
        return [self.event("InvoiceSettled", iid, manuallyMarked=False, overPaid=over)]

    def expire(self, iid: str, *, deliver: bool = True) -> list[dict]:
        invoice = self.invoices[iid]
        partial = any(p["status"] == "Settled" for p in self.payments[iid])
        invoice.update(status="Expired", additionalStatus="PaidPartial" if partial else "None")
        return self._send(
            [self.event("InvoiceExpired", iid, partiallyPaid=partial, manuallyMarked=False)], deliver
        )

    def invalidate_payment(self, iid: str, index: int = 0, *, deliver: bool = True) -> list[dict]:
        """A settled payment turns out invalid (double spend / reorg): the invoice is marked Invalid."""
        with self._state:
            self.payments[iid][index]["status"] = "Invalid"
        self.invoices[iid].update(status="Invalid", additionalStatus="Invalid")
        return self._send([self.event("InvoiceInvalid", iid, manuallyMarked=False)], deliver)

    def event(self, type_: str, iid: str, **extra) -> dict:
        delivery = uuid.uuid4().hex[:22]
        return {
            "deliveryId": delivery,
            "webhookId": "FakeWebhook1",
            "originalDeliveryId": delivery,
            "isRedelivery": False,
            "type": type_,
            "timestamp": int(time.time()),
            "storeId": self.store_id,
            "invoiceId": iid,
            "metadata": self.invoices[iid]["metadata"],
            **extra,
        }

    def redelivery(self, event: dict) -> dict:
        return {**event, "deliveryId": uuid.uuid4().hex[:22], "isRedelivery": True}

    def signed(self, event: dict, secret: str | None = None) -> tuple[str, str]:
        body = json.dumps(event)
        return body, sign(body, secret or self.webhook_secret)

    def _send(self, events: list[dict], deliver: bool) -> list[dict]:
        for event in events if deliver else []:
            self.deliver(event)
        return events

    def deliver(self, event: dict) -> httpx.Response | None:
        if not self.webhook_url:
            self.outbox.append(event)
            return None
        body, sig = self.signed(event)
        response = httpx.post(
            self.webhook_url,
            content=body,
            timeout=30,
            headers={"Content-Type": "application/json", "BTCPay-Sig": sig},
        )
        self.delivered.append((event, response.status_code))
        return response

    async def _adeliver(self, client: httpx.AsyncClient, event: dict) -> None:
        if not self.webhook_url:
            self.outbox.append(event)
            return
        body, sig = self.signed(event)
        response = await client.post(
            self.webhook_url, content=body, headers={"Content-Type": "application/json", "BTCPay-Sig": sig}
        )
        self.delivered.append((event, response.status_code))


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake BTCPay checkout</title>
<style>body{{font:15px system-ui,sans-serif;display:grid;place-items:center;min-height:100vh;margin:0;
background:#f1f4f6}}
.box{{background:#fff;padding:32px;border-radius:12px;width:360px}}
.amt{{font-size:30px;font-weight:700;margin:8px 0}}
button{{width:100%;padding:12px;margin-top:8px;border:0;border-radius:8px;font-size:16px;cursor:pointer}}
#pay{{background:#51b13e;color:#fff}}</style></head>
<body><form class="box" method="post" action="{action}"><small>TEST · fake BTCPay Server</small>
<div class="amt">{amount}</div><div>{btc} BTC</div>
<button id="pay" name="action" value="pay">Pay {btc} BTC</button>
<button id="pay-half" name="action" value="half">Pay half</button>
<button id="cancel" name="action" value="cancel">Cancel (let the invoice expire)</button></form>
</body></html>"""
