"""schemathesis hooks for scripts/schemathesis: tus PATCH bodies are raw bytes under their own
media type (application/offset+octet-stream), which schemathesis has no serializer for."""

import schemathesis
from schemathesis.transport.requests import binary_serializer


@schemathesis.serializer("application/offset+octet-stream")
def offset_octet_stream(ctx, value):
    return binary_serializer(ctx, value)
