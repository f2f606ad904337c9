"""The material service: parts, versioned BOMs, locations, lots and sublots (receive, disposition,
split, merge), serialized units, and material issued into work orders."""
from mes.material.service_def import service

__all__ = ["service"]
