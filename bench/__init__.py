"""Benchmarks and the chaos suite. A package so that ``bench.chaos`` has one module name for
mypy whether it is run (``python -m bench.chaos.run``) or imported by tests; the scripts
here still run by path (``python bench/<script>.py``) and import their neighbours by name."""
