"""The work order service."""
from mes.work_order.service_def import service

__all__ = ["service"]
