"""A camera's picture and sound inside Home Assistant: one Google session, many consumers.

Google allows one client per RTSP stream URL, so each RTSP camera has ONE session at a time
(`CameraFeed`), read with PyAV in a thread (demuxed, not decoded), and everything that needs
the camera's picture or sound consumes that session: the WebRTC viewers (`webrtc.py`, sound
transcoded to Opus once per camera in `audio.py`), the still images and the MJPEG stream
(`picture.py`, decoded once per camera). Nothing here imports Home Assistant: the HA layer
(`live.py`, `camera.py`) owns the feeds and tells them the current stream URL.
"""
