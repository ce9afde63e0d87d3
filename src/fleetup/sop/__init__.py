"""The operator's SOP as data, and the pure engine that runs it.

Public face: load definitions (``loader``), run instances (``engine``), draw them
(``mermaid``). Nothing here touches a database, a clock or the network; the only I/O is
reading definition files.
"""

from fleetup.sop.engine import apply, due, start
from fleetup.sop.errors import DefinitionError, DefinitionProblem, EngineError, SopError
from fleetup.sop.events import (
    CheckFailed,
    CheckPassed,
    DecisionTaken,
    Event,
    Evidence,
    FileRef,
    Resumed,
    StepFinished,
    StepStarted,
    parse_event,
)
from fleetup.sop.loader import (
    BUILTIN_CHARTS,
    builtin_definitions,
    effective_definitions,
    load_builtin,
    load_definition,
    parse_definition,
)
from fleetup.sop.model import Definition, Edge, Node, Text
from fleetup.sop.state import DueItem, Effect, InstanceState, StepRun, Transition, Wait

__all__ = [
    "BUILTIN_CHARTS",
    "CheckFailed",
    "CheckPassed",
    "DecisionTaken",
    "Definition",
    "DefinitionError",
    "DefinitionProblem",
    "DueItem",
    "Edge",
    "Effect",
    "EngineError",
    "Event",
    "Evidence",
    "FileRef",
    "InstanceState",
    "Node",
    "Resumed",
    "SopError",
    "StepFinished",
    "StepRun",
    "StepStarted",
    "Text",
    "Transition",
    "Wait",
    "apply",
    "builtin_definitions",
    "due",
    "effective_definitions",
    "load_builtin",
    "load_definition",
    "parse_definition",
    "parse_event",
    "start",
]
