"""The packed per-unit record of a map: each unit's phase and attempt count in two bytes, so a
map's status stays small whatever its size (``resource.MapStatus.record``). Pure.

A unit is one pod's worth of a map's items (``batchSize`` items, one by default). The record is
byte arrays of one byte per unit, compressed with zlib and written as base64: the phase's code,
then the attempts made (at most 255), then, only while some unit has them, the failures of each
unit since the last rerun, its own (``failures``) and the infrastructure's (``infrastructure``),
which its retry budget counts (``RetryPolicy.limit`` and ``.infrastructure``, at most 20 each).
Those are cleared once a unit finishes, so they are non-zero only for units in flight (at most
the map's parallelism) and compress to almost nothing.

Size: a map of 100,000 units where most units stand alike (all pending, all succeeded) takes about a
kilobyte; any content at most ``max_encoded(units)`` (zlib's bound, in base64).
Reading and writing it is done in C (``bytearray.find/count/translate``, zlib), never a Python
loop over units. ArrayNode keeps Flyte's per-item phases in bit-packed arrays the same way.
"""

from __future__ import annotations

import base64
import math
import zlib

from ferry.api.resource import Phase

PHASES = (Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED)
"""A unit's phases, by their code in the record (a unit is never ``Stopped``: it fails, or is skipped)."""
CODE = {phase: code for code, phase in enumerate(PHASES)}
_CODES = bytes(range(len(PHASES)))
MAX_ATTEMPTS = 255
LEVEL = 1
"""zlib's fastest level: a mixed record of 100,000 units packs in ~2 ms (level 6: ~14 ms, for 20% less)."""
_DECODED: dict[str, bytes] = {}
"""The last records encoded or decoded (text → raw bytes): a step decodes what the previous one
encoded, so this spares the decompression. Bounded; pure (the text determines the bytes)."""
_KEEP = 64


def max_encoded(units: int) -> int:
    """The longest ``encode`` can be for ``units`` units, whatever they hold: 4 bytes a unit, at
    most zlib's ``compressBound`` of that, in base64 (4/3)."""
    raw = 4 * units
    return 4 * math.ceil((raw + (raw >> 12) + (raw >> 14) + (raw >> 25) + 13) / 3)


class Record:
    """Every unit's phase, attempts and failures since the last rerun, changed in place and packed
    with ``encode``."""

    __slots__ = ("phases", "attempts", "failures", "infrastructure")

    def __init__(self, units: int):
        self.phases = bytearray(units)  # all PENDING (code 0)
        self.attempts = bytearray(units)
        self.failures = bytearray(units)
        self.infrastructure = bytearray(units)

    def __len__(self) -> int:
        return len(self.phases)

    @classmethod
    def decode(cls, text: str | None, units: int) -> Record:
        """The record ``encode`` wrote for ``units`` units; a new one (all pending) for None. A record
        that is not one (another length, not zlib, not base64) raises ValueError."""
        record = cls(units)
        if text is None:
            return record
        data = _DECODED.get(text)
        if data is None:
            try:
                inflating = zlib.decompressobj()  # never past the longest record: a small text may inflate to GiBs
                data = inflating.decompress(base64.b64decode(text, validate=True), 4 * units + 1)
            except (ValueError, zlib.error) as error:
                raise ValueError(f"not a packed map record: {error}") from None
            if not inflating.eof:
                raise ValueError(f"not a packed record of {units} units (longer, or cut short)")
            if data[:units].translate(None, _CODES):  # a byte that is no phase's code
                raise ValueError(f"not a packed record of {units} units: unknown phases")
        if len(data) not in (2 * units, 4 * units):
            raise ValueError(f"not a packed record of {units} units ({len(data)} bytes)")
        record.phases[:] = data[:units]
        record.attempts[:] = data[units:2 * units]
        if len(data) == 4 * units:
            record.failures[:] = data[2 * units:3 * units]
            record.infrastructure[:] = data[3 * units:]
        _remember(text, data)
        return record

    def encode(self, before: str | None = None) -> str:
        """The packed record; ``before`` itself when it packs the same (no compression again)."""
        counted = self.failures.count(0) < len(self) or self.infrastructure.count(0) < len(self)
        data = bytes(self.phases + self.attempts + (self.failures + self.infrastructure if counted else b""))
        if before is not None and _DECODED.get(before) == data:
            return before
        text = base64.b64encode(zlib.compress(data, LEVEL)).decode()
        _remember(text, data)
        return text

    def phase(self, unit: int) -> Phase:
        return PHASES[self.phases[unit]]

    def attempt(self, unit: int) -> int:
        return self.attempts[unit]

    def set(self, unit: int, phase: Phase, attempt: int | None = None) -> None:
        self.phases[unit] = CODE[phase]
        if attempt is not None:
            if not 0 <= attempt <= MAX_ATTEMPTS:
                raise ValueError(f"unit {unit}: attempt {attempt} is outside 0..{MAX_ATTEMPTS}")
            self.attempts[unit] = attempt
        if phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED):
            self.failures[unit] = self.infrastructure[unit] = 0

    def count(self, phase: Phase) -> int:
        return self.phases.count(CODE[phase])

    def find(self, phase: Phase, start: int = 0, stop: int | None = None) -> int:
        """The first unit in ``phase`` at or after ``start`` (before ``stop``), or -1: a scan in C."""
        return self.phases.find(CODE[phase], start, len(self.phases) if stop is None else stop)

    def units(self, phase: Phase, limit: int | None = None) -> list[int]:
        """Every unit in ``phase`` (the first ``limit``), in order: one scan in C between each two."""
        code, found, at = CODE[phase], [], self.phases.find(CODE[phase])
        while at != -1 and (limit is None or len(found) < limit):
            found.append(at)
            at = self.phases.find(code, at + 1)
        return found

    def replace(self, phases: tuple[Phase, ...], phase: Phase) -> None:
        """Every unit in one of ``phases`` is in ``phase`` now, with no failures counted: a rerun (all
        but succeeded units pending again, with a fresh retry budget) or a halt (pending skipped).
        Attempts stay, so attempt numbers (and pod names) go on. One pass in C."""
        table = bytearray(range(256))
        for old in phases:
            table[CODE[old]] = CODE[phase]
        self.phases[:] = self.phases.translate(table)
        self.failures[:] = self.infrastructure[:] = bytes(len(self))


def _remember(text: str, data: bytes) -> None:
    if len(_DECODED) >= _KEEP:
        _DECODED.pop(next(iter(_DECODED)))
    _DECODED[text] = data
