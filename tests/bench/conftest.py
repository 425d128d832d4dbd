"""Tests here run the real pjsua2 user agent: each is watched for pjsua2 lifetime rule breaks
(`tests.pjsua_watch`)."""

from tests.pjsua_watch import pjsua_lifetimes

__all__ = ["pjsua_lifetimes"]
