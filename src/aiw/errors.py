"""The one error tree of ``aiw``.

Every error the platform raises on purpose derives from :class:`AiwError`. Messages say what was
wrong and how to fix it, in one line. Vendor errors (SQLAlchemy, DuckDB, httpx, MLflow ...) are
translated at the boundary into the most specific type here with ``raise ... from exc``.

Only ``aiw.api.errors`` maps these to HTTP status codes, and only ``aiw.cli`` maps them to exit
codes::

    AiwError
    ├── ConfigError                  a setting is missing, malformed or names an unknown adapter
    ├── InvalidInputError(ValueError) the caller's input is wrong (a bad argument, payload or file)
    ├── NotFoundError(LookupError)    a named thing (model, key, run, document ...) does not exist
    ├── ConflictError                 the thing exists already, or its state forbids the change
    ├── AuthError                     no key, an unknown or revoked key
    ├── PolicyViolation               the caller may not do this (role, approval, gate, self-approval)
    ├── IntegrityError                stored data failed a check (checksum, audit hash chain)
    ├── RolloutError                  a canary or shadow deployment cannot go on
    ├── PipelineError                 a pipeline step failed
    ├── ModelError                    a served model raised while scoring input that passed its checks
    └── BackendError                  a backend (database, index, server) failed
        ├── TransientBackendError     worth retrying: timeouts, refused connections, 429/5xx
        └── PermanentBackendError     retrying will not help
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AiwError",
    "AuthError",
    "BackendError",
    "ConfigError",
    "ConflictError",
    "IntegrityError",
    "InvalidInputError",
    "ModelError",
    "NotFoundError",
    "PermanentBackendError",
    "PipelineError",
    "PolicyViolation",
    "RolloutError",
    "TransientBackendError",
]


class AiwError(Exception):
    """Root of every error the platform raises on purpose.

    Args:
        message: One line that says what was wrong and how to fix it.
        hint: Optional extra advice, kept apart so that shells may render it differently.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def fields(self) -> dict[str, Any]:
        """Machine-readable facts about the error (added to the API's error body); none by default."""
        return {}


class ConfigError(AiwError):
    """A setting is missing or malformed, or names an adapter that does not exist."""


class InvalidInputError(AiwError, ValueError):
    """The caller's input is wrong: a bad argument, payload, query or file."""


class NotFoundError(AiwError, LookupError):
    """A named thing does not exist."""


class ConflictError(AiwError):
    """The thing exists already, or its current state forbids the change."""


class AuthError(AiwError):
    """The request carries no key, or an unknown or revoked one."""


class PolicyViolation(AiwError):
    """The caller is known but may not do this (role, approval policy, metric gate)."""


class IntegrityError(AiwError):
    """Stored data failed a check: an artifact checksum or the audit log's hash chain."""


class RolloutError(AiwError):
    """A canary or shadow deployment cannot start or go on."""


class PipelineError(AiwError):
    """A pipeline or one of its steps failed."""


class ModelError(AiwError):
    """A served model raised while scoring input that passed its signature checks.

    The message names the model, the version and the exception's type, never its text (which
    may carry data or secrets); the server log has the traceback.

    Attributes:
        model: The model's name.
        version: The version that failed.
        error_type: The type name of the exception the model raised.
    """

    def __init__(self, message: str, *, model: str, version: int, error_type: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.model = model
        self.version = version
        self.error_type = error_type

    def fields(self) -> dict[str, Any]:
        """The model, version and exception type (never the exception's text)."""
        return {"model": self.model, "version": self.version, "error_type": self.error_type}

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (Ray sends a worker's errors back to the driver): Exception's own reduce
        # would call ModelError(message) without the keyword-only facts.
        return (_model_error, (self.message, self.model, self.version, self.error_type, self.hint))


def _model_error(message: str, model: str, version: int, error_type: str, hint: str | None) -> ModelError:
    return ModelError(message, model=model, version=version, error_type=error_type, hint=hint)


class BackendError(AiwError):
    """A backend (database, index, model server, broker) failed."""


class TransientBackendError(BackendError):
    """A backend failure that is worth retrying (timeout, refused connection, 429, 5xx)."""


class PermanentBackendError(BackendError):
    """A backend failure that retrying will not fix (bad credentials, missing table)."""
