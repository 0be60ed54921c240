"""The VDA 5050 2.0 AGV factsheet (section 6.16), read the 2.1 way where 2.1 only adds."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import model_validator

from kpai_fleet.vda5050.base import (
    BlockingType,
    Message,
    Model,
    NonNegative,
    Uint32,
    minor_version,
)

__all__ = [
    'ActionScope', 'AgvAction', 'AgvActionParameter', 'AgvGeometry', 'Factsheet',
    'LoadSet', 'LoadSpecification', 'MaxStringLens', 'OptionalParameter', 'PhysicalParameters',
    'ProtocolFeatures', 'ProtocolLimits', 'Timing', 'TypeSpecification', 'ValueDataType',
]


class TypeSpecification(Model):
    series_name: str
    series_description: str | None = None
    agv_kinematic: Literal['DIFF', 'OMNI', 'THREEWHEEL']
    agv_class: Literal['FORKLIFT', 'CONVEYOR', 'TUGGER', 'CARRIER']
    max_load_mass: NonNegative
    localization_types: list[str]
    navigation_types: list[str]


class PhysicalParameters(Model):
    speed_min: float
    speed_max: float
    acceleration_max: float
    deceleration_max: float
    height_min: float | None = None  # required in 2.0 (checked by Factsheet), optional in 2.1
    height_max: float
    width: float
    length: float


class MaxStringLens(Model):
    msg_len: Uint32 | None = None
    topic_serial_len: Uint32 | None = None
    topic_elem_len: Uint32 | None = None
    id_len: Uint32 | None = None
    id_numerical_only: bool | None = None
    enum_len: Uint32 | None = None
    load_id_len: Uint32 | None = None


class Timing(Model):
    min_order_interval: float
    min_state_interval: float
    default_state_interval: float | None = None
    visualization_interval: float | None = None


class ProtocolLimits(Model):
    """Limits of the AGV; a limit left out or set to 0 means no explicit limit."""

    max_string_lens: MaxStringLens
    # keys such as 'order.nodes' or 'state.errors' (the text and the schema differ in a few
    # spellings, e.g. state.informations / state.information): kept as a mapping
    max_array_lens: dict[str, Uint32]
    timing: Timing


class OptionalParameter(Model):
    parameter: str
    support: Literal['SUPPORTED', 'REQUIRED']
    description: str | None = None


class ValueDataType(str, Enum):
    """Data type of an action parameter's value as the factsheet declares it."""

    BOOL = 'BOOL'
    NUMBER = 'NUMBER'
    INTEGER = 'INTEGER'
    FLOAT = 'FLOAT'
    STRING = 'STRING'
    OBJECT = 'OBJECT'
    ARRAY = 'ARRAY'


class ActionScope(str, Enum):
    """Where an action may be used."""

    INSTANT = 'INSTANT'
    NODE = 'NODE'
    EDGE = 'EDGE'


class AgvActionParameter(Model):
    key: str
    value_data_type: ValueDataType
    description: str | None = None
    is_optional: bool | None = None


class AgvAction(Model):
    action_type: str
    action_description: str | None = None
    action_scopes: list[ActionScope]
    action_parameters: list[AgvActionParameter] | None = None
    result_description: str | None = None
    blocking_types: list[BlockingType] | None = None  # 2.1 addition

    def parameter(self, key: str) -> AgvActionParameter | None:
        """Return the declared parameter key, or None."""
        return next((p for p in self.action_parameters or () if p.key == key), None)


class ProtocolFeatures(Model):
    optional_parameters: list[OptionalParameter]
    agv_actions: list[AgvAction]

    def action(self, action_type: str) -> AgvAction | None:
        """Return the declared action of actionType, or None."""
        return next((a for a in self.agv_actions if a.action_type == action_type), None)


class Position(Model):
    x: float
    y: float
    theta: float | None = None


class WheelDefinition(Model):
    type: Literal['DRIVE', 'CASTER', 'FIXED', 'MECANUM']
    is_active_driven: bool
    is_active_steered: bool
    position: Position
    diameter: float
    width: float
    center_displacement: float | None = None
    constraints: str | None = None


class PolygonPoint(Model):
    x: float
    y: float


class Envelope2d(Model):
    set: str
    polygon_points: list[PolygonPoint]
    description: str | None = None


class Envelope3d(Model):
    set: str
    format: str
    data: dict[str, Any] | None = None
    url: str | None = None
    description: str | None = None


class AgvGeometry(Model):
    wheel_definitions: list[WheelDefinition] | None = None
    envelopes2d: list[Envelope2d] | None = None
    envelopes3d: list[Envelope3d] | None = None


class BoundingBoxReference(Model):
    x: float
    y: float
    z: float
    theta: float | None = None


class LoadDimensions(Model):
    length: NonNegative
    width: NonNegative
    height: NonNegative | None = None


class LoadSet(Model):
    set_name: str
    load_type: str
    load_positions: list[str] | None = None
    bounding_box_reference: BoundingBoxReference | None = None
    load_dimensions: LoadDimensions | None = None
    max_weight: float | None = None
    min_loadhandling_height: float | None = None
    max_loadhandling_height: float | None = None
    min_loadhandling_depth: float | None = None
    max_loadhandling_depth: float | None = None
    min_loadhandling_tilt: float | None = None
    max_loadhandling_tilt: float | None = None
    agv_speed_limit: float | None = None
    agv_acceleration_limit: float | None = None
    agv_deceleration_limit: float | None = None
    pick_time: float | None = None
    drop_time: float | None = None
    description: str | None = None


class LoadSpecification(Model):
    load_positions: list[str] | None = None
    load_sets: list[LoadSet] | None = None


class Factsheet(Message):
    """The factsheet: headerId and timestamp are required in 2.0 and optional from 2.1 on."""

    type_specification: TypeSpecification
    physical_parameters: PhysicalParameters
    protocol_limits: ProtocolLimits
    protocol_features: ProtocolFeatures
    agv_geometry: AgvGeometry
    load_specification: LoadSpecification
    localization_parameters: dict[str, Any] | None = None

    @model_validator(mode='after')
    def _v20_requirements(self) -> Factsheet:
        """Require what 2.0.x requires and 2.1 relaxed: headerId, timestamp, heightMin."""
        if minor_version(self.version) == 0:
            missing = [name for name, value in (
                ('headerId', self.header_id), ('timestamp', self.timestamp),
                ('physicalParameters.heightMin', self.physical_parameters.height_min))
                if value is None]
            if missing:
                raise ValueError(f'a {self.version} factsheet requires {", ".join(missing)}')
        return self
