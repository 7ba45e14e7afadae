"""The container's HEALTHCHECK: exit 0 when the server answers GET /health (slim images have no curl)."""

from __future__ import annotations

import sys
import urllib.request

from config import Config

if __name__ == "__main__":
    port = Config.from_environment().port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError:
        sys.exit(1)
