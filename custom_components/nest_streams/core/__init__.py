"""The stream-keeping core: command queue, rate limiter and camera state machines.

Nothing here imports Home Assistant or google-nest-sdm: the core talks to a `StreamClient`
and reads time from a `Clock`, so it can be tested and simulated on its own.
"""
