"""`/metrics` in the Prometheus text format: jobs by state, queue length, processing seconds, workers.

Job numbers are read from the store at scrape time, so they are true across restarts and whatever process
ran the jobs; counts of refused uploads live in the server process (reset on restart, as counters may).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # `*_created` timestamps of counters say nothing useful here


class _StoreCollector(Collector):
    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        counts = self.service.store.counts()
        jobs = GaugeMetricFamily("avforensics_jobs", "Jobs in the store by state", labels=["state"])
        for state, count in counts.items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily("avforensics_queue_length", "Jobs waiting for a worker",
                                value=counts["queued"])
        count, total = self.service.store.processing_seconds()
        yield SummaryMetricFamily("avforensics_job_processing_seconds",
                                  "Seconds from a worker taking a job to its report", count_value=count,
                                  sum_value=total)
        yield GaugeMetricFamily("avforensics_workers_alive", "Worker processes running",
                                value=self.service.workers_alive)


class ServiceMetrics:
    """The registry of one app (not the global one, so several apps can live in one process)."""

    def __init__(self, service: Any) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(service))
        self.rejected = Counter("avforensics_requests_rejected", "Job requests refused, by HTTP status",
                                ["status"], registry=self.registry)
        self.created = Counter("avforensics_jobs_created", "Jobs accepted into the queue",
                               registry=self.registry)
