"""The case engine: one workflow (``CaseWorkflow``) runs every case type.

Import ``workflows.engine.case_workflow`` for the workflow class; this package imports nothing
heavy (a test checks that sqlalchemy, rapidfuzz, jinja2 and httpx stay out).
"""
