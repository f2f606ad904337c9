"""The material service: parts, versioned BOMs, locations, lots and sublots (receive, disposition,
split, merge), serialized units, and material issued into work orders."""
from mes.material.service_def import service
from mes.material import api as _api

service.router = _api.router

__all__ = ["service"]
