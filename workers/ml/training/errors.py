"""Why a training run stops early: the data cannot be trained on, or the user cancelled it."""


class TrainingDataError(ValueError):
    """The data (or the spec against the data) cannot be trained on. `field` names the spec field to fix, as in
    workers.ml.training.spec errors ("target", "features", "feature_kinds", "split.strategy", ...)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    @property
    def errors(self) -> dict[str, list[str]]:
        """The API's field-error shape."""
        return {self.field: [self.message]}


class RunCancelled(Exception):
    """The run's should_stop callback asked to stop; nothing of the run is kept."""
