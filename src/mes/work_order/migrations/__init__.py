"""Migrations of the work_order service (managed by `isles migrate`)."""
