"""Entity services of the camera entities: restart_stream, stop_stream, start_stream, and the
restream URL's get_restream_url and rotate_restream_secret (admins only: the URL shows the
camera to anyone who has it).

Registered as platform entity services (as HA core's Blink does), so entity, device, area,
label and `all` targets work and HA resolves them. A call is checked whole before any camera
changes ("all or nothing"): a WebRTC camera named by its entity id fails the call (it streams
on demand: nothing to start or stop), one reached through a device, area, label or `all` is
skipped; starting cameras the quota could not keep alive fails the call. The check is made
once per call, with the first camera HA hands it, and the verdict holds for every camera of
that call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from homeassistant.components.camera.const import DOMAIN as CAMERA_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, ENTITY_MATCH_ALL
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import service, target
from homeassistant.helpers.entity import Entity

from .const import DOMAIN

if TYPE_CHECKING:
    from .camera import NestStreamsCamera

SERVICE_RESTART = "restart_stream"
SERVICE_STOP = "stop_stream"
SERVICE_START = "start_stream"
SERVICES = (SERVICE_RESTART, SERVICE_STOP, SERVICE_START)
SERVICE_GET_RESTREAM_URL = "get_restream_url"
SERVICE_ROTATE_RESTREAM_SECRET = "rotate_restream_secret"


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one call may do: fail whole, or run on every camera but the skipped ones."""

    error: HomeAssistantError | None = None
    skip: frozenset[str] = field(default_factory=frozenset)


_verdicts: dict[int, tuple[ServiceCall, _Verdict]] = {}


def _cameras(hass: HomeAssistant) -> list[NestStreamsCamera]:
    from .camera import NestStreamsCamera

    component = hass.data.get(CAMERA_DOMAIN)
    entities = getattr(component, "entities", ())
    return [entity for entity in entities if isinstance(entity, NestStreamsCamera)]


def _verdict(hass: HomeAssistant, call: ServiceCall) -> _Verdict:
    """The call's verdict, made once for all its cameras."""
    if (known := _verdicts.get(id(call))) is not None and known[0] is call:
        return known[1]
    verdict = _judge(hass, call)
    _verdicts[id(call)] = (call, verdict)
    hass.loop.call_soon(_verdicts.pop, id(call), None)  # after every camera's turn began
    return verdict


def _judge(hass: HomeAssistant, call: ServiceCall) -> _Verdict:
    cameras = _cameras(hass)
    if call.data.get(ATTR_ENTITY_ID) == ENTITY_MATCH_ALL:
        named: set[str] = set()
        targeted = {camera.entity_id for camera in cameras}
    else:
        selected = target.async_extract_referenced_entity_ids(
            hass, target.TargetSelection(call.data)
        )
        named = selected.referenced
        targeted = selected.referenced | selected.indirectly_referenced
    chosen = [camera for camera in cameras if camera.entity_id in targeted]
    on_demand = sorted(c.entity_id for c in chosen if not c.keeps_alive)
    if named_on_demand := [entity_id for entity_id in on_demand if entity_id in named]:
        return _Verdict(
            error=ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="on_demand",
                translation_placeholders={"entity_id": ", ".join(named_on_demand)},
            )
        )
    if call.service in (SERVICE_START, SERVICE_RESTART):
        by_coordinator: dict[int, tuple[NestStreamsCamera, set[str]]] = {}
        for camera in chosen:
            if camera.keeps_alive:
                entry = by_coordinator.setdefault(id(camera.coordinator), (camera, set()))
                entry[1].add(camera.device_id)
        for camera, device_ids in by_coordinator.values():
            if left_out := camera.coordinator.not_admitted(device_ids):
                names = sorted(c.entity_id for c in chosen if c.device_id in left_out)
                return _Verdict(
                    error=ServiceValidationError(
                        translation_domain=DOMAIN,
                        translation_key="over_capacity",
                        translation_placeholders={
                            "entity_id": ", ".join(names),
                            "capacity": str(camera.coordinator.capacity),
                        },
                    )
                )
    return _Verdict(skip=frozenset(on_demand))


async def _handle(entity: Entity, call: ServiceCall) -> None:
    """Run `call` on one camera, as the call's verdict says."""
    from .camera import NestStreamsCamera

    assert isinstance(entity, NestStreamsCamera)
    verdict = _verdict(entity.hass, call)
    if verdict.error is not None:
        raise verdict.error
    if entity.entity_id not in verdict.skip:
        entity.apply_service(call.service)


async def _get_restream_url(entity: Entity, call: ServiceCall) -> ServiceResponse:
    """The camera's restream URL (its secret made on first use)."""
    from .camera import NestStreamsCamera

    assert isinstance(entity, NestStreamsCamera)
    return {"url": await entity.async_restream_url()}


async def _rotate_restream_secret(entity: Entity, call: ServiceCall) -> None:
    """A new secret for the camera's restream URL; its current readers are ended."""
    from .camera import NestStreamsCamera

    assert isinstance(entity, NestStreamsCamera)
    await entity.async_rotate_restream_secret()


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, in async_setup)."""
    for name in SERVICES:
        service.async_register_platform_entity_service(
            hass, DOMAIN, name, entity_domain=CAMERA_DOMAIN, schema=None, func=_handle
        )
    service.async_register_platform_entity_service(
        hass,
        DOMAIN,
        SERVICE_GET_RESTREAM_URL,
        entity_domain=CAMERA_DOMAIN,
        schema=None,
        func=_get_restream_url,
        admin_only=True,
        supports_response=SupportsResponse.ONLY,
    )
    service.async_register_platform_entity_service(
        hass,
        DOMAIN,
        SERVICE_ROTATE_RESTREAM_SECRET,
        entity_domain=CAMERA_DOMAIN,
        schema=None,
        func=_rotate_restream_secret,
        admin_only=True,
    )
