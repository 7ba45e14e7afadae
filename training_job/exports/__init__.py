"""The export job and its platforms: an iteration's ONNX model converted for another runtime, run on the
iteration's own training images and compared with the service before it is offered for download."""
