"""Migrations of the resource service (managed by `isles migrate`)."""
