"""The packed per-unit record of a map: each unit's phase and attempt count in two bytes, so a
map's status stays small whatever its size (``resource.MapStatus.record``). Pure.

A unit is one pod's worth of a map's items (``batchSize`` items, one by default). The record is
two byte arrays of one byte per unit (the phase's code, then the attempts made, at most 255),
compressed with zlib and written as base64: a map of 100,000 units where most units stand alike
(all pending, all succeeded) takes a few hundred bytes, and any mix at most 100,000 × 2 bytes
before compression. ArrayNode keeps Flyte's per-item phases in bit-packed arrays the same way.
"""

from __future__ import annotations

import base64
import zlib

from ferry.api.resource import Phase

PHASES = (Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED)
"""A unit's phases, by their code in the record (a unit is never ``Stopped``: it fails, or is skipped)."""
_CODE = {phase: code for code, phase in enumerate(PHASES)}
MAX_ATTEMPTS = 255


class Record:
    """Every unit's phase and attempts, changed in place and packed with ``encode``."""

    __slots__ = ("phases", "attempts")

    def __init__(self, units: int):
        self.phases = bytearray(units)  # all PENDING (code 0)
        self.attempts = bytearray(units)

    def __len__(self) -> int:
        return len(self.phases)

    @classmethod
    def decode(cls, text: str | None, units: int) -> Record:
        """The record ``encode`` wrote for ``units`` units; a new one (all pending) for None. A record
        that is not one (another length, not zlib, not base64) raises ValueError."""
        record = cls(units)
        if text is None:
            return record
        try:
            data = zlib.decompress(base64.b64decode(text, validate=True))
        except (ValueError, zlib.error) as error:
            raise ValueError(f"not a packed map record: {error}") from None
        if len(data) != 2 * units or max(data[:units], default=0) >= len(PHASES):
            raise ValueError(f"not a packed record of {units} units ({len(data)} bytes)")
        record.phases[:] = data[:units]
        record.attempts[:] = data[units:]
        return record

    def encode(self) -> str:
        return base64.b64encode(zlib.compress(bytes(self.phases) + bytes(self.attempts), 6)).decode()

    def phase(self, unit: int) -> Phase:
        return PHASES[self.phases[unit]]

    def attempt(self, unit: int) -> int:
        return self.attempts[unit]

    def set(self, unit: int, phase: Phase, attempt: int | None = None) -> None:
        self.phases[unit] = _CODE[phase]
        if attempt is not None:
            if not 0 <= attempt <= MAX_ATTEMPTS:
                raise ValueError(f"unit {unit}: attempt {attempt} is outside 0..{MAX_ATTEMPTS}")
            self.attempts[unit] = attempt

    def count(self, phase: Phase) -> int:
        return self.phases.count(_CODE[phase])

    def find(self, phase: Phase, start: int = 0, stop: int | None = None) -> int:
        """The first unit in ``phase`` at or after ``start`` (before ``stop``), or -1: a scan in C."""
        return self.phases.find(_CODE[phase], start, len(self.phases) if stop is None else stop)

    def units(self, phase: Phase) -> list[int]:
        """Every unit in ``phase``, in order."""
        code, found, at = _CODE[phase], [], self.phases.find(_CODE[phase])
        while at != -1:
            found.append(at)
            at = self.phases.find(code, at + 1)
        return found
