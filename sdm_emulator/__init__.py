"""A local Google SDM + OAuth emulator: Google's paths, shapes, quota and stream lifetimes.

`Emulator` holds the state and answers requests (`Emulator.handle`); `app.create_app` serves it
over HTTP; `inprocess.InProcessSession` lets an aiohttp client (google-nest-sdm) talk to it
without sockets, which is how benchmarks run hours of virtual time in seconds.
"""

from .config import DeviceKind, DeviceSpec, EmulatorConfig, default_devices
from .emulator import Emulator, Reply
from .faults import FaultConfig, ScriptedFault

__all__ = [
    "DeviceKind",
    "DeviceSpec",
    "Emulator",
    "EmulatorConfig",
    "FaultConfig",
    "Reply",
    "ScriptedFault",
    "default_devices",
]
