"""`manage.py stop_local_model_servers`: stop every model server the local runner started on this host.

The local runner starts model servers in process groups of their own, so they outlive a worker restart (the next
worker adopts them). `make run` calls this when it stops, so Ctrl-C leaves no server behind; the deployments' desired
state is kept and the next start's reconciler brings them back.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from workers.serving.runners.local import LocalRunner


class Command(BaseCommand):
    help = "Stop every model server the local runner started on this host (deployments are kept)."

    def handle(self, *args, **options):
        state_dir = settings.SERVING_STATE_DIR
        runner = LocalRunner(state_dir)
        stopped = [folder.name for folder in sorted(state_dir.glob("*")) if folder.is_dir()]
        for endpoint_id in stopped:
            runner.stop(endpoint_id)
        self.stdout.write(
            f"Stopped the model servers of {len(stopped)} endpoint(s)." if stopped else "No model server."
        )
