"""Classifying images with a trained model, for the predict command and the web service alike: the
prediction record (prediction.py) and the predictor (predictor.py: a checkpoint through Lightning's
predict loop or an exported .onnx file on onnxruntime, one digit per image or every digit of a
number)."""
