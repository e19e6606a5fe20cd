"""Failed logins reach no view of ours (Django's auth raises a signal), so the signal hands them to a service."""

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver


@receiver(user_login_failed)
def _record_failed_login(sender, credentials, request=None, **kwargs):
    from apps.accounts.services import login_failure_record

    login_failure_record(username=str(credentials.get("username", ""))[:150])
