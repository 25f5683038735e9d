"""MLflow's exceptions, translated into buildsys's: what a retry may fix, what it may not."""

from __future__ import annotations

from buildsys import RegistryError, RegistryUnavailable, retry_after

Unavailable = RegistryUnavailable
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_CONNECTION = ("Connection refused", "Connection reset by peer", "Connection aborted", "RemoteDisconnected",
               "Read timed out", "timed out", "Max retries exceeded", "too many 5", "too many 429",
               "ChunkedEncodingError", "IncompleteRead", "Broken pipe")
_CREDENTIALS = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"


class NotFound(RegistryError):
    """MLflow answered RESOURCE_DOES_NOT_EXIST (404)."""


def translated(fn, what: str, server: str):
    """Return ``fn()``; turn MLflow and requests errors into ``NotFound``, ``RegistryUnavailable``
    (connection failures, 429, 5xx: retried by the caller) or ``RegistryError``."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        return fn()
    except (MlflowException, requests.RequestException) as exc:
        raise _translate(exc, what, server) from None


def _translate(exc: BaseException, what: str, server: str) -> RegistryError:
    status, code = _status(exc)
    chain = _chain(exc)
    if status in (401, 403) or code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return RegistryError(f"MLflow at {server} refused the credentials ({status or code}) while {what}",
                             hint=_CREDENTIALS)
    connection = next((c for c in _CONNECTION if c.lower() in chain.lower()), None)
    if connection or status in TRANSIENT_STATUS or code in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
        reason = connection or f"HTTP {status}"
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        return RegistryUnavailable(f"cannot reach MLflow at {server} ({what}): {reason}",
                                   retry_after=retry_after(headers.get("Retry-After")))
    if status == 404 or code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
        return NotFound(f"{what}: not found at {server}")
    message = getattr(exc, "message", None) or str(exc)
    return RegistryError(f"MLflow at {server} failed while {what}: {message.splitlines()[0][:300]}")


def _status(exc: BaseException) -> tuple[int | None, str | None]:
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return response.status_code, None
    code = getattr(exc, "error_code", None)
    if code in (None, "INTERNAL_ERROR"):  # MLflow's code for "the request failed", not a 500 answer
        text = str(exc)
        for status in (401, 403, 404, 408, 429, 500, 502, 503, 504):
            if f"error code {status}" in text or f"status code {status}" in text:
                return status, code
        return None, code
    try:
        return exc.get_http_status_code(), code
    except Exception:
        return None, code


def _chain(exc: BaseException | None) -> str:
    texts = []
    while exc is not None and len(texts) < 8:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " | ".join(texts)
