"""The SIP tests run the real pjsua2 user agent: every test is watched for pjsua2 lifetime
rule breaks (`tests.support.pjsua_watch`)."""

from tests.support.pjsua_watch import pjsua_lifetimes

__all__ = ["pjsua_lifetimes"]
