"""Settings of the training workers the SIGKILL test starts (DJANGO_SETTINGS_MODULE for their process): the
project's settings, with an abandoned message handed out again within seconds instead of after the visibility timeout
(the longest hard time limit + 10 minutes) and kombu's restore scan (every ~100 s)."""

from config.settings import *  # noqa: F403

REDELIVERY_SECONDS = 8

if "visibility_timeout" in CELERY_BROKER_TRANSPORT_OPTIONS:  # noqa: F405 - Redis (the filesystem transport has none)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "visibility_timeout": REDELIVERY_SECONDS,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
