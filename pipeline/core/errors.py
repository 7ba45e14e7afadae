"""Custom Vision style errors: `{"code": ..., "message": ...}` with the spec's codes and HTTP statuses."""

from __future__ import annotations


class CustomVisionError(Exception):
    """An error the API reports to the client; raise it anywhere in `pipeline`, the app renders it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(code: str, message: str) -> CustomVisionError:
    return CustomVisionError(400, code, message)


def not_found(code: str, message: str) -> CustomVisionError:
    return CustomVisionError(404, code, message)


def unauthorized() -> CustomVisionError:
    return CustomVisionError(
        401,
        "Unauthorized",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
        "for an active subscription and use a correct regional API endpoint for your resource.",
    )


def project_not_found(project_id: str) -> CustomVisionError:
    return not_found("NotFoundProject", f"Project {project_id} not found.")


def tag_not_found(tag_id: str) -> CustomVisionError:
    return not_found("NotFoundTag", f"Tag {tag_id} not found.")


def image_not_found(image_id: str) -> CustomVisionError:
    return not_found("NotFoundImage", f"Image {image_id} not found.")


def iteration_not_found(iteration_id: str) -> CustomVisionError:
    return not_found("NotFoundIteration", f"Iteration {iteration_id} not found.")


def not_trained(what: str) -> CustomVisionError:
    """`what` names the iteration or project, e.g. "Iteration 2 is not trained."."""
    return bad_request("BadRequestIterationIsNotTrained", what)


class ServiceUnavailable(CustomVisionError):
    """Seer cannot answer right now (storage unreachable, or too busy to take the work): 503 with Retry-After,
    so a client backs off and retries instead of treating it as a bug. The prediction API reports it as
    ErrorPredictionServiceUnavailable, the training API as ErrorServerTimeOut (both codes from the spec)."""

    def __init__(self, message: str, retry_after_seconds: int = 5) -> None:
        super().__init__(503, "ErrorServerTimeOut", message)
        self.retry_after_seconds = retry_after_seconds
