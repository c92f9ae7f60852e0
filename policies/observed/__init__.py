"""Observed traffic: captures read as connections, replayed against a plan, and learned from.

- ``read``: every file shape Hubble and Log Analytics produce, detected by content (``read``);
- ``hubble`` / ``log_analytics``: what one Hubble record or Log Analytics row becomes (and the KQL
  that aggregates rows server-side);
- ``records``: ends, connections, per-file counts;
- ``replay``: the connections judged against a plan's policies by the verdict engine;
- ``learn``: the config that would allow what the replay would drop.
"""

from policies.observed.read import read
from policies.observed.records import Connection, End, FileCounts, Observations, summary

__all__ = ["Connection", "End", "FileCounts", "Observations", "read", "summary"]
