"""The web app `digits.serve` runs (app.py): a page to draw or photograph a digit (page/), and a
JSON API over digits.inference."""
