"""Dashboard pages of this app (mounted at the site root by gpuniq_site.urls)."""

from django.urls import path

from . import views_keys, views_pages

page_patterns: list = [
    path("signup/", views_pages.signup, name="signup"),
    path("login/", views_pages.LoginView.as_view(), name="login"),
    path("logout/", views_pages.LogoutView.as_view(), name="logout"),
    path("password-reset/", views_pages.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", views_pages.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path(
        "reset/<uidb64>/<token>/",
        views_pages.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("reset/done/", views_pages.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("account/", views_pages.account_settings, name="account"),
    path("quickstart/", views_pages.quickstart, name="quickstart"),
    path("keys/", views_keys.keys, name="keys"),
    path("keys/create", views_keys.key_create, name="key-create"),
    path("keys/<int:pk>/edit", views_keys.key_edit, name="key-edit"),
    path("keys/<int:pk>/row", views_keys.key_row, name="key-row"),
    path("keys/<int:pk>/revoke", views_keys.key_revoke, name="key-revoke"),
]
