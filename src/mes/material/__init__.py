"""The material service: parts (and, later, BOMs, lots, serials and inventory)."""
from mes.material.service_def import service
from mes.material import api as _api

service.router = _api.router

__all__ = ["service"]
