"""The self-signed certificate of ``FakeDatadog(tls=True)``: made at start, for 127.0.0.1.

The ``openssl`` command when there is one, else the optional ``cryptography`` package; neither is
needed by a plain-HTTP server, so nothing here is imported before a TLS server starts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["self_signed_certificate"]


def self_signed_certificate(directory: str) -> tuple[str, str]:
    """Write ``cert.pem`` and ``key.pem`` (P-256, valid two days, for 127.0.0.1 and localhost)
    into ``directory``; return their paths."""
    cert = str(Path(directory) / "cert.pem")
    key = str(Path(directory) / "key.pem")
    openssl = shutil.which("openssl")
    if openssl is not None:
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-subj", "/CN=FakeDatadog",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    try:
        return _certificate_with_cryptography(cert, key)
    except ImportError:
        raise RuntimeError(
            "FakeDatadog(tls=True) needs the openssl command or the cryptography package"
        ) from None


def _certificate_with_cryptography(cert_path: str, key_path: str) -> tuple[str, str]:
    """The same certificate without the openssl command (imports typed loosely: optional)."""
    import datetime
    import importlib
    import ipaddress

    x509: Any = importlib.import_module("cryptography.x509")
    hashes: Any = importlib.import_module("cryptography.hazmat.primitives.hashes")
    ec: Any = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ec")
    serialization: Any = importlib.import_module("cryptography.hazmat.primitives.serialization")
    oid: Any = importlib.import_module("cryptography.x509.oid")
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, "FakeDatadog")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(private_key, hashes.SHA256())
    )
    Path(key_path).write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    Path(cert_path).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
