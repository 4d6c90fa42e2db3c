"""Account pages: sign up, log in/out, password reset and change, settings, and the API quick start."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from .forms import ProfileForm, SignupForm, ThrottledLoginForm
from .keys import user_keys
from .models import User
from .quickstart import snippets
from .signals import user_signed_up
from .web import member_page


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = User.objects.create_user(data["email"], data["password"], time_zone=data["time_zone"])
        user_signed_up.send(sender=User, user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("dashboard")  # its onboarding card says what to do first
    return render(request, "accounts/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default): a link or an image tag cannot log anyone out."""


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@member_page
@require_http_methods(["GET", "POST"])
def account_settings(request):
    profile = ProfileForm(
        request.POST if request.POST.get("form") == "profile" else None, instance=request.user
    )
    password = PasswordChangeForm(
        request.user, request.POST if request.POST.get("form") == "password" else None
    )
    if profile.is_bound and profile.is_valid():
        profile.save()
        messages.success(request, "Profile saved.")
        return redirect("account")
    if password.is_bound and password.is_valid():
        update_session_auth_hash(request, password.save())
        messages.success(request, "Password changed.")
        return redirect("account")
    return render(request, "accounts/settings.html", {"profile": profile, "password": password})


def quickstart(request):
    key = None
    if request.user.is_authenticated:
        key = user_keys(request.user).filter(revoked_at__isnull=True).first()
    return render(
        request,
        "accounts/quickstart.html",
        {
            "snippets": snippets(settings.PUBLIC_BASE_URL),
            "key": key,
            "openai_base": f"{settings.PUBLIC_BASE_URL.rstrip('/')}/v1/openai",
        },
    )
