from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing and ledger"

    def ready(self) -> None:
        from accounts.keys import provide_account_lookup
        from accounts.signals import user_signed_up

        from .ledger import account_for_user
        from .signup_credit import credit_new_user

        user_signed_up.connect(credit_new_user, dispatch_uid="billing.signup_credit")
        provide_account_lookup(lambda user_id: account_for_user(user_id).pk)
