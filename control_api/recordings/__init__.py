"""Call recordings: one storage seam (`store.py`), locally or in an S3 bucket (`s3.py`),
and their per-tenant retention (`retention.py`)."""
