"""Schema and Layer-2 validation of one message, computed once and shared by every schema rule."""
from __future__ import annotations

from dataclasses import dataclass

from conformance.layer2 import Layer2, Layer2Pack
from conformance.messages import Message
from conformance.schemas import SchemaError, SchemaSet


@dataclass(frozen=True, slots=True)
class Outcome:
    core: list[SchemaError]
    layer2: list[tuple[str, SchemaError]]
    """(rule id, violation) for each place the pack finds wrong that the core does not already report."""
    pack: Layer2Pack | None


UNCHECKED = Outcome([], [], None)
"""The outcome of a record with no schema to check against (not a Beckn message, or an unknown action)."""


class Validation:
    """Validates against the core schemas and the message's Layer-2 pack in (usually) one pass.

    A pack only narrows the core, so a message valid against the pack is valid against the core: the
    common case costs one `is_valid` call.
    """

    def __init__(self, schemas: SchemaSet, layer2: Layer2) -> None:
        self.schemas = schemas
        self.layer2 = layer2

    def outcome(self, msg: Message) -> Outcome:
        action = msg.action
        core = self.schemas.validator(action) if action is not None else None
        if core is None or action is None:
            return UNCHECKED
        ctx = msg.context
        pack = self.layer2.pack_for(ctx.get("domain"), ctx.get("version"))
        narrowed = pack.schemas.validator(action) if pack else None
        if narrowed is not None and narrowed.is_valid(msg.body):
            return Outcome([], [], pack)
        core_errors = self.schemas.errors(core, msg.body)
        if narrowed is None or pack is None or pack.schemas is self.schemas:  # a pack that narrows nothing
            return Outcome(core_errors, [], pack)
        # Where the core already finds a field wrong, the pack adds nothing the participant needs.
        seen = {e.path for e in core_errors}
        extra = [(pack.rule_id(e.schema_path), e) for e in pack.schemas.errors(narrowed, msg.body)
                 if e.path not in seen]
        return Outcome(core_errors, extra, pack)

    def ack_errors(self, msg: Message) -> list[SchemaError]:
        validator = self.schemas.ack_validator
        return [] if validator is None else self.schemas.errors(validator, msg.response)
