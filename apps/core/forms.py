"""What every HTML form of the portal shares."""


class ErrorsMixin:
    """Put a service's {field: [messages]} next to the fields; unknown fields become form-level errors."""

    def apply_errors(self, errors: dict[str, list[str]], *, message: str = "") -> None:
        self.errors  # noqa: B018 - validate once first (an unbound form gets an empty error list)
        if not hasattr(self, "cleaned_data"):
            self.cleaned_data = {}
        if not errors and message:
            self.add_error(None, message)
        for field, messages in errors.items():
            for text in messages:
                self.add_error(self.error_field(field, text), text)

    def error_field(self, key: str, message: str = "") -> str | None:
        return key if key in self.fields else None
