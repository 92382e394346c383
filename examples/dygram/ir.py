"""Pydantic v2 intermediate representation of a DyGram state machine."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict


class StateKind(str, Enum):
    """The role a state plays in the machine."""

    start = "start"
    task = "task"
    decision = "decision"
    end = "end"


class State(BaseModel):
    """A named state, optionally annotated with a free-text note."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: StateKind = StateKind.task
    note: str | None = None


class Transition(BaseModel):
    """A directed edge between two states, optionally labelled."""

    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    label: str | None = None


class Machine(BaseModel):
    """A whole state machine, as produced by a (fake) model."""

    model_config = ConfigDict(frozen=True)

    title: str
    states: list[State]
    transitions: list[Transition]
    model: str

    def successors(self, state: str) -> list[str]:
        """Return the targets of all transitions leaving `state`, in declaration order."""
        return [t.target for t in self.transitions if t.source == state]
