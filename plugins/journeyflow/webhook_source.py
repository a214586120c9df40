"""SendGrid Event Webhook payload files, with the ECDSA signature checked when a key is set."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from journeyflow.readers import GoodRow, RejectedRow, SourceFileError, read_source_file
from journeyflow.sources import SourceSpec

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
SIGNATURE_SUFFIX = ".sig"


def signature_file(payload: Path) -> Path:
    """Where the webhook receiver keeps a payload's signature headers (JSON)."""
    return payload.with_name(payload.name + SIGNATURE_SUFFIX)


def _signature_headers(payload: Path) -> tuple[bytes, bytes]:
    sidecar = signature_file(payload)
    expected = (
        f"{payload}: expected a signed SendGrid Event Webhook payload with its headers in "
        f"{sidecar.name}"
    )
    try:
        headers = {str(k).lower(): str(v) for k, v in json.loads(sidecar.read_text()).items()}
        signature = base64.b64decode(headers[SIGNATURE_HEADER], validate=True)
        return signature, headers[TIMESTAMP_HEADER].encode()
    except FileNotFoundError as error:
        raise SourceFileError(f"{expected}; that file is missing") from error
    except (ValueError, KeyError, AttributeError, binascii.Error) as error:
        raise SourceFileError(f"{expected}; it is not readable: {error!r}") from error


def verify_payload(payload: Path, verification_key: str) -> None:
    """Check the ECDSA (P-256, SHA-256) signature over timestamp + body, streaming the body."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    signature, timestamp = _signature_headers(payload)
    digest = hashlib.sha256(timestamp)
    with open(payload, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    public_key = serialization.load_der_public_key(base64.b64decode(verification_key))
    try:
        public_key.verify(signature, digest.digest(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature as error:
        raise SourceFileError(
            f"{payload}: the SendGrid Event Webhook signature does not verify with the "
            f"configured verification_key; the payload is not loaded"
        ) from error


def read_event_file(path: Path, spec: SourceSpec) -> Iterator[GoodRow | RejectedRow]:
    """Events of one webhook payload (a JSON array), after its signature is verified."""
    if spec.verification_key:
        verify_payload(path, spec.verification_key)
    return read_source_file(path, spec)
