"""Keys and users changed by a plain model save — Django admin's change forms, `manage.py shell` —
rather than through keys.revoke_key / update_key: their cached principals go with the commit too,
so every process refuses a revoked key or a deactivated user, and applies a key's new limits, at
once (the embedded default's in-process caches included, through the shared stamp file).
A queryset .update() sends no signal: code that bulk-updates keys calls keys.forget_key itself."""

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .keys import forget_key
from .models import APIKey, User


def _forget_key(sender: type, instance: APIKey, using: str, created: bool = False, **kwargs: Any) -> None:
    if not created:  # a new key has nothing cached yet
        key_hash = instance.key_hash
        transaction.on_commit(lambda: forget_key(key_hash), using=using)


def _forget_users_keys(
    sender: type,
    instance: User,
    using: str,
    created: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """A principal holds one fact of its user's: that the user is active."""
    if created or (update_fields is not None and "is_active" not in update_fields):
        return  # a sign-up, or a login stamping last_login
    hashes = list(APIKey.objects.using(using).filter(user_id=instance.pk).values_list("key_hash", flat=True))

    def forget() -> None:
        for key_hash in hashes:
            forget_key(key_hash)

    if hashes:
        transaction.on_commit(forget, using=using)


def connect() -> None:
    post_save.connect(_forget_key, sender=APIKey, dispatch_uid="accounts.key_saves.saved_key")
    post_delete.connect(_forget_key, sender=APIKey, dispatch_uid="accounts.key_saves.deleted_key")
    post_save.connect(_forget_users_keys, sender=User, dispatch_uid="accounts.key_saves.saved_user")
