"""Migrations of the auth service (managed by `isles migrate`)."""
