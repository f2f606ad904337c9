"""Scaffolding: ``isles new service NAME`` writes a service package in the shape every isles
service has (service_def, models, events, access, api + one concept, handlers, migrations, a test)."""
from isles.scaffold.names import ServiceNames, derive
from isles.scaffold.service import Scaffold, new_service

__all__ = ["Scaffold", "ServiceNames", "derive", "new_service"]
