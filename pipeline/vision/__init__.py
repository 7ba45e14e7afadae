"""Vision: image decoding, preprocessing, inference, metrics, boxes and annotation files; no storage, no torch."""
