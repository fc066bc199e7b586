"""The Temporal SDK runtime of a process: its Core logs and (on the worker) its metrics.

Core (the Rust part of the SDK) would print its own text logs to stderr; they are forwarded
to the ``temporalio.core`` Python logger instead, so they come out as JSON lines like every
other log (``core/logging.py``). On the worker, ``WORKER_METRICS_ADDRESS`` (e.g.
``0.0.0.0:9464``) starts the SDK's Prometheus endpoint: the SDK's metrics (task latencies,
slots, polls, sticky cache, ...) and the application counters of ``core/metrics.py``, at
``http://<address>/metrics``. Empty: no endpoint.
"""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

CORE_LOGGER = "temporalio.core"


def temporal_runtime(metrics_address: str | None = None) -> Runtime:
    """A runtime whose Core logs go to Python logging, with Prometheus metrics on
    ``metrics_address`` when it is given (counters end in ``_total``, durations in seconds)."""
    metrics = (
        PrometheusConfig(
            bind_address=metrics_address,
            counters_total_suffix=True,
            durations_as_seconds=True,
        )
        if metrics_address
        else None
    )
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
            ),
            metrics=metrics,
        )
    )


def install_default_runtime(metrics_address: str | None = None) -> Runtime:
    """Make ``temporal_runtime(metrics_address)`` the process default (before any client
    connects), so every client of the process forwards Core logs; returns it."""
    runtime = temporal_runtime(metrics_address)
    Runtime.set_default(runtime, error_if_already_set=False)
    return runtime
