"""The HTTP server of the exported container, standard library only: POST /image (raw image bytes, or the
multipart field `imageData`) and POST /url (JSON {"url": ...}) answer Custom Vision's ImagePrediction JSON. The
Prediction API's own paths ({project}/classify|detect/iterations/{name}/image|url, optionally /nostore) are
accepted too, so Custom Vision's SDKs can point at the container. GET /health answers while the model is loaded.
Every bad request gets a Custom Vision error JSON (400 or 404), never a traceback."""

from __future__ import annotations

import logging
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from answers import BadInput, CustomVisionError, Health, ImagePrediction, ImageUrl
from config import Config
from inputs import fetched_image, uploaded_image
from model import Model
from picture import decode
from pydantic import ValidationError

log = logging.getLogger("seer.model")

PREDICTION_ROUTE = re.compile(
    r"^(?:/.*/(?:classify|detect)/iterations/[^/]+)?/(?P<source>image|url)(?:/nostore)?/?$"
)
# Above this, a rejected body is not read to its end: the connection is closed instead.
MAX_DRAINED_BYTES = 64 * 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: Config, model: Model) -> None:
        super().__init__((config.host, config.port), PredictionHandler)
        self.config = config
        self.model = model


class PredictionHandler(BaseHTTPRequestHandler):
    server: ModelServer
    server_version = "SeerModel/1"

    def setup(self) -> None:
        self.timeout = self.server.config.read_timeout_seconds  # a client that stops sending is let go
        super().setup()

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/health":
            self._answer(200, Health().to_json())
        else:
            self._not_found()

    def do_POST(self) -> None:
        route = PREDICTION_ROUTE.match(urlsplit(self.path).path)
        if route is None:
            self._not_found()
            return
        try:
            image = decode(self._image_bytes(route["source"]), self.server.config)
            predictions, verdict = self.server.model.predict(image)
            unknown = verdict if self.server.config.unknown_detection else None
            answer = ImagePrediction(predictions=predictions, unknown=unknown)
        except BadInput as bad:
            self._error(400, bad.code, bad.message)
        except Exception:  # the client gets an answer, the log the traceback
            log.exception("prediction failed")
            self._error(500, "ErrorPrediction", "The model could not predict on this image.")
        else:
            self._answer(200, answer.to_json())

    def _image_bytes(self, source: str) -> bytes:
        config = self.server.config
        body = self._body(config.max_image_bytes + FORM_OVERHEAD_BYTES)
        if source == "image":
            return uploaded_image(body, self.headers.get("Content-Type", ""))
        try:
            url = ImageUrl.model_validate_json(body).url
        except ValidationError as error:
            raise BadInput(
                "BadRequestImageUrl", 'The body must be JSON like {"url": "https://..."}.'
            ) from error
        return fetched_image(url, config)

    def _body(self, limit: int) -> bytes:
        declared = self.headers.get("Content-Length", "")
        if not declared.isdigit():
            raise BadInput("BadRequestImageStream", "The request needs a Content-Length header.")
        length = int(declared)
        if length > limit:
            self._discard(length)
            raise BadInput(
                "BadRequestImageSizeBytes", f"The body is {length} bytes; the limit is {limit} bytes."
            )
        try:
            body = self.rfile.read(length)
        except TimeoutError as error:
            self.close_connection = True
            raise BadInput("BadRequestImageStream", "The body stopped arriving before its end.") from error
        if len(body) < length:
            raise BadInput("BadRequestImageStream", f"The body ended after {len(body)} of {length} bytes.")
        return body

    def _discard(self, length: int) -> None:
        """Read a refused body so the client sees the answer rather than a reset connection, unless it is huge."""
        if length > MAX_DRAINED_BYTES:
            self.close_connection = True
            return
        while length > 0 and (chunk := self.rfile.read(min(length, 1 << 20))):
            length -= len(chunk)

    def _not_found(self) -> None:
        path = urlsplit(self.path).path
        self._error(404, "NotFound", f"No route for {self.command} {path}; use POST /image or POST /url.")

    do_PUT = do_DELETE = do_PATCH = _not_found

    def _error(self, status: int, code: str, message: str) -> None:
        self._answer(status, CustomVisionError(code=code, message=message).to_json())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s " + format, self.address_string(), *args)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = Config.from_environment()
    server = ModelServer(config, Model(config.model_path))
    log.info("serving %s on %s:%d", config.model_path.name, config.host, config.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
