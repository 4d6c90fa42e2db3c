"""Fake Stripe API and hosted Checkout page (loopback only, never the real Stripe).

Wire format follows Stripe's API reference (https://docs.stripe.com/api):
* ``POST /v1/checkout/sessions`` (checkout/sessions/create): a form-encoded body with bracketed
  keys (``line_items[0][price_data][unit_amount]=500``), exactly as stripe-python sends it; answers
  a Checkout Session object (``id`` "cs_test_…", ``object`` "checkout.session", ``url``,
  ``amount_total`` in cents, ``currency``, ``status``, ``payment_status``, ``metadata``,
  ``client_reference_id``, ``payment_intent``, ``success_url``, ``cancel_url``, ``mode``).
* ``GET /v1/checkout/sessions/{id}`` (retrieve), ``POST /v1/checkout/sessions/{id}/expire`` (expire: an
  open session becomes ``status`` "expired" and ``checkout.session.expired`` is sent; any other
  status answers 400), and ``GET /v1/refunds?charge=…`` (refunds/list,
  a list object with ``data`` and ``has_more``).
* Errors: ``{"error": {"type": "invalid_request_error", "message", "param"}}`` with 400/401/404.
* Webhooks (https://docs.stripe.com/webhooks#verify-events): an Event object (``id`` "evt_…",
  ``object`` "event", ``type``, ``created``, ``livemode``, ``api_version``, ``data.object``) POSTed as
  JSON with ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with
  the endpoint secret>``. :func:`sign` computes it independently of stripe-python.
* ``POST /v1/refunds`` (refunds/create: ``payment_intent``, ``amount`` in cents; the ``Idempotency-Key``
  header replays the first answer) answers the Refund and sends ``charge.refunded``.
* Refunds (https://docs.stripe.com/api/refunds/object): ``status`` pending → succeeded | failed |
  canceled; a later change arrives as ``charge.refund.updated`` with the Refund as data.object.
* Disputes (https://docs.stripe.com/api/disputes/object, /disputes#dispute_object-status):
  ``charge.dispute.created`` / ``charge.dispute.closed`` with a Dispute (``id`` "du_…", ``amount``,
  ``charge``, ``payment_intent``, ``reason``, ``status`` needs_response | won | lost | warning_*).

``GET /pay/{id}`` stands in for checkout.stripe.com: its "Pay" button marks the session paid and
delivers the signed ``checkout.session.completed`` webhook to ``webhook_url`` (or, without one,
keeps the events in ``outbox`` for the test to deliver), then redirects to ``success_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import threading
import time
import uuid
from urllib.parse import parse_qsl

import httpx

from .common import Conn, FakeServer, Request

API_VERSION = "2025-01-27.acacia"


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for a raw JSON body."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def parse_form(body: bytes) -> dict:
    """Stripe's bracketed form encoding → nested dicts and lists."""
    out: dict = {}
    for raw_key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", raw_key)
        node = out
        for part, nxt in zip(parts, parts[1:] + [None]):
            if nxt is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(out)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def _uid(prefix: str) -> str:
    """Ids unique across fakes and test runs (the test database outlives one fake)."""
    return prefix + uuid.uuid4().hex[:24]


def _error(message: str, param: str | None = None, type_: str = "invalid_request_error") -> dict:
    return {"error": {"type": type_, "message": message, "param": param}}


class FakeStripe(FakeServer):
    """Args: ``api_key`` (the secret key callers must send), ``webhook_secret``, ``webhook_url``."""

    def __init__(
        self,
        *,
        api_key: str = "sk_test_fake",
        webhook_secret: str = "whsec_fake",
        webhook_url: str | None = None,
        **kw,
    ):
        super().__init__(api_key=api_key, **kw)
        self.webhook_secret, self.webhook_url = webhook_secret, webhook_url
        self.sessions: dict[str, dict] = {}
        self.refunds: dict[str, list[dict]] = {}  # charge id -> refunds
        self.outbox: list[dict] = []
        self.idempotent: dict[str, dict] = {}
        self.delivered: list[tuple[dict, int]] = []  # (event, gateway status)
        self._state = threading.Lock()
        self.route("POST", r"/v1/checkout/sessions", self._create_session)
        self.route("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", self._get_session)
        self.route("POST", r"/v1/checkout/sessions/(?P<id>[^/]+)/expire", self._expire_session)
        self.route("GET", r"/v1/refunds", self._list_refunds)
        self.route("POST", r"/v1/refunds", self._create_refund)
        self.route("GET", r"/pay/(?P<id>[^/]+)", self._checkout_page)
        self.route("POST", r"/pay/(?P<id>[^/]+)", self._checkout_pay)

    # ------------------------------------------------------------------ API
    def _authorized(self, req: Request) -> bool:
        return req.headers.get("authorization", "") == f"Bearer {self.api_key}"

    async def _create_session(self, req: Request, conn: Conn) -> None:
        if not self._authorized(req):
            await conn.send_json(401, _error("Invalid API Key provided.", type_="invalid_request_error"))
            return
        try:
            session = self.open_session(parse_form(req.body))
        except (KeyError, IndexError, ValueError, TypeError):
            await conn.send_json(400, _error("Missing line_items[0][price_data].", "line_items"))
            return
        await conn.send_json(200, session)

    def open_session(self, params: dict) -> dict:
        """Create a session from (parsed) create parameters, as POST /v1/checkout/sessions does."""
        item = params["line_items"][0]
        cents = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
        sid = _uid("cs_test_")
        session = {
            "id": sid,
            "object": "checkout.session",
            "mode": params.get("mode", "payment"),
            "url": f"{self.base_url}/pay/{sid}",
            "amount_total": cents,
            "amount_subtotal": cents,
            "currency": item["price_data"]["currency"],
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata", {}),
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "livemode": False,
        }
        with self._state:
            self.sessions[sid] = session
        return session

    async def _get_session(self, req: Request, conn: Conn) -> None:
        sid = req.path.rsplit("/", 1)[-1]
        if not self._authorized(req):
            await conn.send_json(401, _error("Invalid API Key provided."))
        elif sid not in self.sessions:
            await conn.send_json(404, _error(f"No such checkout.session: '{sid}'", "session"))
        else:
            await conn.send_json(200, self.sessions[sid])

    async def _expire_session(self, req: Request, conn: Conn) -> None:
        sid = req.path.split("/")[-2]
        if not self._authorized(req):
            await conn.send_json(401, _error("Invalid API Key provided."))
            return
        with self._state:
            session = self.sessions.get(sid)
            if session is not None and session["status"] == "open":
                session["status"] = "expired"
                event = self.event("checkout.session.expired", dict(session))
            else:
                event = None
        if session is None:
            await conn.send_json(404, _error(f"No such checkout.session: '{sid}'", "session"))
        elif event is None:
            await conn.send_json(
                400,
                _error(
                    f"Only Checkout Sessions with a status of `open` can be expired. "
                    f"This Checkout Session has a status of `{session['status']}`."
                ),
            )
        else:
            async with httpx.AsyncClient(timeout=30) as client:
                await self._adeliver(client, event)
            await conn.send_json(200, session)

    async def _create_refund(self, req: Request, conn: Conn) -> None:
        if not self._authorized(req):
            await conn.send_json(401, _error("Invalid API Key provided."))
            return
        params = parse_form(req.body)
        key = req.headers.get("idempotency-key")
        if key and key in self.idempotent:
            await conn.send_json(200, self.idempotent[key])
            return
        sid = next(
            (s for s, v in self.sessions.items() if v.get("payment_intent") == params.get("payment_intent")),
            None,
        )
        if sid is None:
            await conn.send_json(400, _error("No such payment_intent.", "payment_intent"))
            return
        event = self.refund(sid, int(params["amount"]) if params.get("amount") else None)
        refund = event["data"]["object"]["refunds"]["data"][0]
        if key:
            self.idempotent[key] = refund
        async with httpx.AsyncClient(timeout=30) as client:
            await self._adeliver(client, event)
        await conn.send_json(200, refund)

    async def _list_refunds(self, req: Request, conn: Conn) -> None:
        if not self._authorized(req):
            await conn.send_json(401, _error("Invalid API Key provided."))
            return
        data = list(self.refunds.get(req.query.get("charge", ""), []))
        await conn.send_json(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})

    # ------------------------------------------------------------------ hosted checkout page
    async def _checkout_page(self, req: Request, conn: Conn) -> None:
        session = self.sessions.get(req.path.rsplit("/", 1)[-1])
        if session is None:
            await conn.send_bytes(404, b"<h1>Checkout session not found</h1>", "text/html")
            return
        amount = f"${session['amount_total'] / 100:,.2f}"
        page = _CHECKOUT_HTML.format(
            amount=amount,
            email=html.escape(session.get("customer_email") or ""),
            action=f"/pay/{session['id']}",
            cancel=html.escape(session["cancel_url"] or "/"),
        )
        await conn.send_bytes(200, page.encode(), "text/html; charset=utf-8")

    async def _checkout_pay(self, req: Request, conn: Conn) -> None:
        sid = req.path.rsplit("/", 1)[-1]
        if sid not in self.sessions:
            await conn.send_bytes(404, b"not found", "text/plain")
            return
        events = self._pay(sid, outcome=parse_form(req.body).get("outcome", "paid"))
        async with httpx.AsyncClient(timeout=30) as client:
            for event in events:
                await self._adeliver(client, event)
        target = self.sessions[sid]["success_url"].replace("{CHECKOUT_SESSION_ID}", sid)
        await conn.send_bytes(303, b"", "text/plain", [("location", target)])

    # ------------------------------------------------------------------ state changes (tests call these)
    def _pay(self, sid: str, outcome: str = "paid") -> list[dict]:
        """Mark a session complete; outcome "paid", "async_success" or "async_fail". Returns its events."""
        with self._state:
            session = self.sessions[sid]
            n = sid.rsplit("_", 1)[-1]
            session.update(status="complete", payment_intent=f"pi_test_{n}")
            session["payment_status"] = "paid" if outcome == "paid" else "unpaid"
            events = [self.event("checkout.session.completed", dict(session))]
            if outcome == "async_success":
                session["payment_status"] = "paid"
                events.append(self.event("checkout.session.async_payment_succeeded", dict(session)))
            elif outcome == "async_fail":
                events.append(self.event("checkout.session.async_payment_failed", dict(session)))
        return events

    def complete(self, sid: str, outcome: str = "paid") -> list[dict]:
        """Pay a session as the hosted page would; events go to webhook_url, else to the outbox."""
        events = self._pay(sid, outcome)
        for event in events:
            self.deliver(event) if self.webhook_url else self.outbox.append(event)
        return events

    def refund(
        self, sid: str, cents: int | None = None, *, with_list: bool = True, status: str = "succeeded"
    ) -> dict:
        """Refund (part of) a paid session's charge; returns the charge.refunded event (not delivered)."""
        with self._state:
            session = self.sessions[sid]
            n = sid.rsplit("_", 1)[-1]
            charge_id = f"ch_test_{n}"
            refunds = self.refunds.setdefault(charge_id, [])
            amount = session["amount_total"] - sum(r["amount"] for r in refunds) if cents is None else cents
            refunds.append(
                {
                    "id": _uid("re_test_"),
                    "object": "refund",
                    "amount": amount,
                    "charge": charge_id,
                    "currency": session["currency"],
                    "payment_intent": session["payment_intent"],
                    "status": status,
                    "created": int(time.time()),
                }
            )
            refunded = sum(r["amount"] for r in refunds)
            charge = {
                "id": charge_id,
                "object": "charge",
                "amount": session["amount_total"],
                "amount_refunded": refunded,
                "refunded": refunded >= session["amount_total"],
                "currency": session["currency"],
                "payment_intent": session["payment_intent"],
                "paid": True,
                "status": "succeeded",
            }
            if with_list:
                charge["refunds"] = {"object": "list", "data": list(reversed(refunds)), "has_more": False}
            return self.event("charge.refunded", charge)

    def refund_update(self, refund_id: str, status: str) -> dict:
        """A refund changes status later (pending → failed); returns charge.refund.updated (not delivered)."""
        with self._state:
            refund = next(r for rs in self.refunds.values() for r in rs if r["id"] == refund_id)
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = "expired_or_canceled_card"
            return self.event("charge.refund.updated", dict(refund))

    def dispute(self, sid: str, cents: int | None = None, status: str = "needs_response") -> dict:
        """The buyer's bank disputes a paid session's charge; returns charge.dispute.created (not
        delivered)."""
        session = self.sessions[sid]
        n = sid.rsplit("_", 1)[-1]
        obj = {
            "id": _uid("du_test_"),
            "object": "dispute",
            "amount": session["amount_total"] if cents is None else cents,
            "currency": session["currency"],
            "charge": f"ch_test_{n}",
            "payment_intent": session["payment_intent"],
            "reason": "fraudulent",
            "status": status,
            "is_charge_refundable": False,
            "created": int(time.time()),
            "livemode": False,
        }
        return self.event("charge.dispute.created", obj)

    def dispute_closed(self, created: dict, status: str) -> dict:
        """The dispute's outcome (won / lost / warning_closed) as charge.dispute.closed (not delivered)."""
        return self.event("charge.dispute.closed", {**created["data"]["object"], "status": status})

    def event(self, type_: str, obj: dict) -> dict:
        return {
            "id": _uid("evt_test_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
            "data": {"object": obj},
        }

    def signed(
        self, event: dict, *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[str, str]:
        """(raw body, Stripe-Signature header) for an event."""
        payload = json.dumps(
            event, indent=2
        )  # Stripe sends pretty-printed JSON; the MAC covers the raw bytes
        return payload, sign(payload, secret or self.webhook_secret, timestamp)

    def deliver(self, event: dict, **signing) -> httpx.Response:
        payload, header = self.signed(event, **signing)
        response = httpx.post(
            self.webhook_url,
            content=payload,
            timeout=30,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        )
        self.delivered.append((event, response.status_code))
        return response

    async def _adeliver(self, client: httpx.AsyncClient, event: dict) -> None:
        if not self.webhook_url:
            self.outbox.append(event)
            return
        payload, header = self.signed(event)
        response = await client.post(
            self.webhook_url,
            content=payload,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        )
        self.delivered.append((event, response.status_code))


_CHECKOUT_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Fake Stripe Checkout</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{margin:0;font:15px system-ui,sans-serif;background:#f6f9fc;color:#1a1f36;
     display:grid;place-items:center;min-height:100vh}}
.box{{background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(50,50,93,.12);padding:32px;width:380px}}
.amt{{font-size:34px;font-weight:700;margin:6px 0 20px}} label{{font-size:13px;color:#697386}}
input{{width:100%;box-sizing:border-box;padding:10px;border:1px solid #e0e6eb;border-radius:6px;
      margin:6px 0 14px;font-size:15px}}
button{{width:100%;padding:12px;border:0;border-radius:6px;background:#635bff;color:#fff;font-size:16px;
       font-weight:600;cursor:pointer}}
.test{{display:inline-block;background:#ffde92;color:#a04100;font-size:11px;font-weight:700;padding:2px 6px;
      border-radius:4px}}
a{{color:#635bff;font-size:13px}}</style></head>
<body><form class="box" method="post" action="{action}">
<span class="test">TEST MODE · fake Stripe</span><div>GPUniq balance top-up</div>
<div class="amt">{amount}</div>
<label>Email</label><input value="{email}" readonly>
<label>Card information</label><input value="4242 4242 4242 4242" readonly>
<input type="hidden" name="outcome" value="paid">
<button id="pay" type="submit">Pay {amount}</button>
<p style="text-align:center"><a href="{cancel}">Cancel and return</a></p></form></body></html>"""
