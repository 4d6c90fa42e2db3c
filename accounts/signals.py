"""Signals other apps listen to (accounts imports none of them: dependencies point at accounts)."""

from django.dispatch import Signal

# Sent once by the sign-up page after a new user was created (keyword: user).
user_signed_up = Signal()
