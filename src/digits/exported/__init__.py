"""Models exported from checkpoints, for use outside digits: writing them (ONNX, TorchScript) and
running an ONNX file with onnxruntime."""

# The formats `digits.export` writes, with their file suffixes (web: a folder's).
EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "web": "-web"}
