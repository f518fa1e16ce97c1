"""What each ATen operator does to the positions and fields of its inputs (an operator table).

:func:`outcome_of` looks the operator up in :data:`~stridelab.inspect.rules.table.RULES`
(filled by :mod:`.views`, :mod:`.mixing` and :mod:`.windows`) and falls back to the
element-wise / unknown rule of :mod:`.pointwise`.
"""

from __future__ import annotations

from stridelab.inspect.rules import mixing, views, windows
from stridelab.inspect.rules.pointwise import default
from stridelab.inspect.rules.table import RULES, Call, Outcome, Result

__all__ = ["RULES", "Call", "Outcome", "Result", "mixing", "outcome_of", "views", "windows"]


def outcome_of(call: Call) -> Outcome:
    """The rule's outcome for ``call`` (the default rule when there is none or it declines)."""
    found = RULES.get(call.name)
    outcome = found(call) if found is not None else None
    return outcome if outcome is not None else default(call)
