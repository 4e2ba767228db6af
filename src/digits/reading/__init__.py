"""Reading photos and scans of handwritten digits: image files in (images.py), MNIST-like 28x28
digits out (preprocess.py), every digit of a number or a sheet in reading order (segment.py), with
the stroke measures and morphology they and training's augmentation share (strokes.py)."""
