"""The web app `digits.serve` runs: a page to draw or photograph a digit, and a JSON API."""
