"""Migrations of the material service (managed by `isles migrate`)."""
