"""The traceability service: the lot and serial genealogy of the plant, built from the other
services' events (it reads no other database), with backward, forward and both-way traces, "is A
upstream of B", the serial as-built tree, recall simulations, digital threads and pictures."""
from mes.traceability.service_def import service

__all__ = ["service"]
