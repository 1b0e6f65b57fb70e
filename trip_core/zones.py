"""The NYC TLC taxi-zone table (taxi_zone_lookup.csv, shipped inside this package)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

ZONE_TABLE_PATH = Path(__file__).with_name("taxi_zone_lookup.csv")


@dataclass(frozen=True)
class ZoneTable:
    """Lookup arrays indexed by LocationID; index 0 and unknown IDs map to code 0."""

    location_ids: frozenset[int]
    borough_names: tuple[str, ...]
    service_zone_names: tuple[str, ...]
    borough_code: np.ndarray
    service_zone_code: np.ndarray

    @property
    def max_location_id(self) -> int:
        return len(self.borough_code) - 1


@cache
def zone_table() -> ZoneTable:
    with ZONE_TABLE_PATH.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ids = [int(row["LocationID"]) for row in rows]
    boroughs = ("", *sorted({row["Borough"] for row in rows}))
    service_zones = ("", *sorted({row["service_zone"] for row in rows}))
    borough_code = np.zeros(max(ids) + 1, dtype=np.int64)
    service_zone_code = np.zeros(max(ids) + 1, dtype=np.int64)
    for location_id, row in zip(ids, rows, strict=True):
        borough_code[location_id] = boroughs.index(row["Borough"])
        service_zone_code[location_id] = service_zones.index(row["service_zone"])
    return ZoneTable(frozenset(ids), boroughs, service_zones, borough_code, service_zone_code)
