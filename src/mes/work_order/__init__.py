"""The work order service."""
from mes.work_order.service_def import service
from mes.work_order import api as _api

service.router = _api.router

__all__ = ["service"]
