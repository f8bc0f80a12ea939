"""Evaluation: the dataset a model is fed, its inputs, its ONNX file, running it, the cache."""
