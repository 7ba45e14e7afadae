"""What the service and the training job share: the training message, training set, evaluation file and ONNX names."""
