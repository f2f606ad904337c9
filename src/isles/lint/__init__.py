"""``isles lint``: naming, keys, indexes and boundaries of every service, and the safety of its
migrations, checked from the one registry of services.

Rules have stable codes (see :mod:`isles.lint.rules`); ``# ignore[CODE] reason`` silences
one finding with a reason; a baseline file lets an existing code base adopt the lint.
"""
from isles.lint.findings import Finding
from isles.lint.output import FORMATS, render
from isles.lint.rules import RULES, Rule
from isles.lint.runner import LintOptions, LintReport, collect, finalize, lint_system

__all__ = ["FORMATS", "Finding", "LintOptions", "LintReport", "RULES", "Rule", "collect", "finalize",
           "lint_system", "render"]
