"""The server's settings, from the environment so `docker run -e ...` can change them without a rebuild. The
defaults are the limits Seer's Prediction API applies."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 80
    max_image_bytes: int = 4 * 1024 * 1024
    max_image_side: int = 10240
    max_image_pixels: int = 10240 * 10240
    min_image_side: int = 256  # Seer upscales smaller pictures to this shortest side before predicting
    stored_image_max_side: int = 1600  # and brings larger ones down to this longest side
    url_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    model_path: Path = HERE / "model.onnx"
    unknown_detection: bool = False  # answer Seer's `unknown` too, as a project with unknownDetection does

    @classmethod
    def from_environment(cls) -> Config:
        env = os.environ
        defaults = cls()
        return cls(
            host=env.get("HOST", defaults.host),
            port=int(env.get("PORT", defaults.port)),
            max_image_bytes=int(env.get("MAX_IMAGE_BYTES", defaults.max_image_bytes)),
            max_image_side=int(env.get("MAX_IMAGE_SIDE", defaults.max_image_side)),
            max_image_pixels=int(env.get("MAX_IMAGE_PIXELS", defaults.max_image_pixels)),
            min_image_side=int(env.get("MIN_IMAGE_SIDE", defaults.min_image_side)),
            stored_image_max_side=int(env.get("STORED_IMAGE_MAX_SIDE", defaults.stored_image_max_side)),
            url_timeout_seconds=float(env.get("URL_TIMEOUT_SECONDS", defaults.url_timeout_seconds)),
            read_timeout_seconds=float(env.get("READ_TIMEOUT_SECONDS", defaults.read_timeout_seconds)),
            model_path=Path(env.get("MODEL_PATH", defaults.model_path)),
            unknown_detection=env.get("UNKNOWN_DETECTION", "false").lower() in ("1", "true", "yes"),
        )
