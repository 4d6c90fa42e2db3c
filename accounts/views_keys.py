"""API-key pages: list, create (the secret is shown once), edit limits, revoke.

Every view looks keys up through the signed-in user, so another user's key is a 404.
htmx requests get the fragment they swap (a table row, the create dialog body); others the page.
"""

from django.contrib import messages
from django.db.models import F
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .forms import KeyForm
from .keys import create_key, revoke_key, update_key, user_keys, with_month_spend
from .models import APIKey
from .web import member_page, no_store, page_or_fragment, wants_fragment


def _own_key(request, pk: int, *, live: bool = False) -> APIKey:
    keys = with_month_spend(user_keys(request.user))
    return get_object_or_404(keys.filter(revoked_at__isnull=True) if live else keys, pk=pk)


def _keys_context(request, **extra) -> dict:
    keys = list(
        with_month_spend(user_keys(request.user)).order_by(
            F("revoked_at").asc(nulls_first=True), "-created_at"
        )
    )
    return {"keys": keys, "live_count": sum(1 for k in keys if not k.is_revoked), **extra}


@member_page
@require_GET
def keys(request):
    return render(request, "accounts/keys.html", _keys_context(request, form=KeyForm()))


@member_page
@require_http_methods(["GET", "POST"])
def key_create(request):
    """GET: the form as a page of its own (the "Create key" link without JavaScript); POST: create."""
    if request.method == "GET":
        return page_or_fragment(
            request, "accounts/key_new.html", "accounts/_key_form.html", {"form": KeyForm()}
        )
    form = KeyForm(request.POST)
    if not form.is_valid():
        return page_or_fragment(
            request, "accounts/key_new.html", "accounts/_key_form.html", _keys_context(request, form=form)
        )
    data = form.cleaned_data
    key, raw = create_key(
        user=request.user,
        name=data["name"],
        rpm=data["rpm"],
        monthly_spend_cap_usd=data["monthly_spend_cap_usd"],
        allowed_models=data["allowed_models"],
    )
    context = _keys_context(request, form=KeyForm(), created=key, raw_key=raw)
    return no_store(page_or_fragment(request, "accounts/keys.html", "accounts/_key_created.html", context))


@member_page
@require_http_methods(["GET", "POST"])
def key_edit(request, pk: int):
    key = _own_key(request, pk, live=True)
    form = KeyForm.for_key(key, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        update_key(
            key=key,
            name=data["name"],
            rpm=data["rpm"],
            monthly_spend_cap_usd=data["monthly_spend_cap_usd"],
            allowed_models=data["allowed_models"],
        )
        key = _own_key(request, pk)
        if wants_fragment(request):
            return render(request, "accounts/_key_row.html", {"key": key, "flash": "Saved"})
        messages.success(request, f"Saved the limits of “{key.name}”.")
        return redirect("keys")
    return page_or_fragment(
        request, "accounts/key_edit.html", "accounts/_key_edit_row.html", {"key": key, "form": form}
    )


@member_page
@require_GET
def key_row(request, pk: int):
    return render(request, "accounts/_key_row.html", {"key": _own_key(request, pk)})


@member_page
@require_http_methods(["GET", "POST"])
def key_revoke(request, pk: int):
    key = _own_key(request, pk)
    if request.method == "GET":
        return render(request, "accounts/key_revoke.html", {"key": key})
    revoke_key(key=key)
    if wants_fragment(request):
        return render(request, "accounts/_key_row.html", {"key": key, "flash": "Revoked"})
    messages.success(request, f"Revoked “{key.name}”. Requests with it are refused from now on.")
    return redirect("keys")
