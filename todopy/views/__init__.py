"""Resource classes, one per URL (see todopy/routes.py)."""
