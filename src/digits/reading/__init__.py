"""Reading photos and scans of handwritten digits: image files in, MNIST-like 28x28 digits out."""
