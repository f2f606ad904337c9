"""Projections: read models in the consuming service's database, fed by events, rebuilt from the log.

See :mod:`isles.projections.projection` (declaring one), :mod:`~isles.projections.live` (applying
events as they arrive), :mod:`~isles.projections.checkpoint` (gaps in a source's sequence),
:mod:`~isles.projections.rebuild` (shadow copy and swap) and :mod:`~isles.projections.lag`.
"""
from isles.projections.fence import RebuildInProgress
from isles.projections.lag import ProjectionLag, projection_lag
from isles.projections.projection import Projection, ProjectionUow
from isles.projections.rebuild import RebuildProgress, RebuildReport, rebuild
from isles.projections.tables import ProjectionTables, install_projection_tables

__all__ = ["Projection", "ProjectionLag", "ProjectionTables", "ProjectionUow", "RebuildInProgress",
           "RebuildProgress", "RebuildReport", "install_projection_tables", "projection_lag", "rebuild"]
