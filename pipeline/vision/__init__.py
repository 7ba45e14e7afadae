"""Vision: image decoding, preprocessing, inference, metrics and annotation files; no storage, no torch."""
