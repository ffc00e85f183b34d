"""Training and evaluation of the injection classifier (never imported on the request path)."""
