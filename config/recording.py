"""The `[recording]` section: how the node writes and keeps the calls its agents record
(an agent's `recording = "on" | "on_consent"`)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from config.section import Section


class RecordingSettings(Section, frozen=True):
    """Call recordings: the file format, and where they are kept."""

    format: Literal["wav", "ogg"] = "wav"
    """`wav`: stereo 16-bit PCM at 16 kHz (64 kB/s); `ogg`: Opus in Ogg (about 4 kB/s). Left
    channel the caller, right the agent."""
    flush_every_s: Annotated[float, Meta(gt=0, le=60)] = 2.0
    """A call's file is flushed this often: a crash loses at most this much (plus 0.2 s)."""
    retention_days: Annotated[int, Meta(ge=0)] = 0
    """Recordings stored longer ago than this are deleted, of every tenant without a retention
    of its own (`PUT /v1/tenants/{id}/recording-retention`; 0: kept). The node looks once at
    start and then every hour."""
    storage: Literal["local", "s3"] = "local"
    """`local`: under `node.data_dir/recordings`; `s3`: the `s3_*` bucket."""
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    """Empty: AWS's own endpoint for `s3_region`; else any S3-compatible service (MinIO, ...)."""
    s3_region: str = "us-east-1"
    s3_prefix: str = "recordings/"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    """Only from `VOICENODE_RECORDING__S3_SECRET_ACCESS_KEY`; with the key id empty, boto3's
    own chain (environment, instance role)."""

    def __post_init__(self) -> None:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("recording.storage = 's3' needs recording.s3_bucket")

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        shown = "***" if self.s3_secret_access_key else ""
        return (
            f"RecordingSettings(format={self.format!r}, storage={self.storage!r}, "
            f"s3_bucket={self.s3_bucket!r}, s3_secret_access_key={shown!r})"
        )
