"""Migrations of the traceability service (managed by `isles migrate`)."""
